package dev.ferry.pytorch.models;

import dev.ferry.core.config.TokenLimits;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.KVCache;
import java.util.List;

/**
 * A decoder-only language model with a head: {@code forward(input_ids [1, s] int64, KVCache or null)} returns
 * the logits {@code [1, s, vocab]} (caller-owned); with a cache, it holds the past and is extended in place.
 */
public abstract class CausalLM extends DjlModule {

    private final ModelConfig config;

    protected CausalLM(String className, DjlBackend backend, ModelConfig config) {
        super(className, backend);
        this.config = config;
    }

    public final ModelConfig config() {
        return config;
    }

    public abstract int numLayers();

    public abstract int vocabSize();

    /** The longest sequence the position embeddings allow. */
    public abstract int maxPositions();

    /** The ids and sequence lengths this model accepts: {@code 0..vocabSize-1}, at most {@link #maxPositions}. */
    public final TokenLimits tokenLimits() {
        return new TokenLimits(vocabSize(), maxPositions());
    }

    public final KVCache newCache() {
        return new KVCache(numLayers());
    }

    public List<Long> eosTokenIds() {
        return config.eosTokenIds();
    }

    /** Runs the model through {@link #call} (so hooks apply). */
    public final DjlTensor logits(Tensor inputIds, KVCache cache) {
        return (DjlTensor) call(inputIds, cache);
    }
}
