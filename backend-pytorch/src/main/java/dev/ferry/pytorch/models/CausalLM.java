package dev.ferry.pytorch.models;

import dev.ferry.core.config.TokenLimits;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.KVCache;
import java.util.List;

/**
 * A decoder-only language model with a head: {@code forward(input_ids [b, s] int64, KVCache or null, attention
 * mask [b, past + s] int64 or null)} returns the logits {@code [b, s, vocab]} (caller-owned); with a cache, it
 * holds the past and is extended in place. Rows of different lengths are left-padded and masked (1 = token,
 * 0 = padding), as transformers does for decoder-only generation; without a mask every position is a token.
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

    /**
     * The fourth forward argument that asks for the trunk's final hidden states {@code [b, s, hidden]} (after the
     * final norm) instead of the logits; the head is not run. Not a tensor, so hooks pass it through.
     */
    public static final Object HIDDEN_STATES = new Object() {
        @Override
        public String toString() {
            return "HIDDEN_STATES";
        }
    };

    /** The final hidden states of left-padded rows (masked by {@code attentionMask}, or none when null), through {@link #call}. */
    public final DjlTensor hiddenStates(Tensor inputIds, Tensor attentionMask) {
        return (DjlTensor) call(inputIds, null, attentionMask, HIDDEN_STATES);
    }

    /** Runs the model on left-padded rows with their {@code attentionMask} ({@code null}: no padding). */
    public final DjlTensor logits(Tensor inputIds, KVCache cache, Tensor attentionMask) {
        return attentionMask == null ? logits(inputIds, cache) : (DjlTensor) call(inputIds, cache, attentionMask);
    }

    /**
     * The id fed at padded positions: the config's {@code pad_token_id} when it is a valid id, else 0 (any id
     * would do, a padded position is hidden from every real token).
     */
    public long padTokenId() {
        var pad = config.json().get("pad_token_id");
        return pad != null && pad.canConvertToLong() && pad.asLong() >= 0 && pad.asLong() < vocabSize()
                ? pad.asLong() : 0;
    }
}
