package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.config.TokenLimits;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.KVCache;
import dev.ferry.pytorch.nn.Linear;
import java.util.List;

/**
 * A decoder-only language model with a head ({@code LlamaForCausalLM}, {@code GPT2LMHeadModel}, ...): a trunk
 * ({@code model} or {@code transformer}) and an {@code lm_head}, tied to the token embedding or not, with the
 * family's optional final soft-capping. {@code forward(input_ids [b, s] int64, KVCache or null, attention mask
 * [b, past + s] int64 or null)} returns the logits {@code [b, s, vocab]} (caller-owned); with a cache, it holds the
 * past and is extended in place. Rows of different lengths are left-padded and masked (1 = token, 0 = padding), as
 * transformers does for decoder-only generation; without a mask every position is a token.
 */
public class CausalLM extends DjlModule {

    private final ModelConfig config;
    private final DecoderTrunk trunk;
    private final Linear lmHead;
    private final int vocab;
    private final int maxPositions;
    private final float finalSoftcap;
    private final int longRopeSwitch;

    /**
     * @param trunkName    the trunk's child name ({@code model}, GPT-2's {@code transformer})
     * @param maxPositions the longest sequence the positions allow
     * @param finalSoftcap {@code tanh(logits / cap) · cap} when positive (Gemma 2)
     * @param longRopeSwitch 0, or the length past which the rope table switches to LongRoPE's long factors, which
     *                       makes keys cached before it stale ({@link #recomputesCacheAt})
     */
    public CausalLM(String className, DjlBackend backend, ModelConfig config, String trunkName, DecoderTrunk trunk,
                    int hidden, int vocab, int maxPositions, boolean tied, float finalSoftcap, int longRopeSwitch,
                    DType dtype) {
        super(className, backend);
        this.longRopeSwitch = longRopeSwitch;
        this.config = config;
        this.vocab = vocab;
        this.maxPositions = maxPositions;
        this.finalSoftcap = finalSoftcap;
        this.trunk = addChild(trunkName, trunk);
        lmHead = addChild("lm_head", tied ? new Linear(backend, trunk.tokenEmbedding().weightSlot())
                : new Linear(backend, hidden, vocab, false, dtype));
    }

    public final ModelConfig config() {
        return config;
    }

    public int numLayers() {
        return trunk.layerCount();
    }

    public int vocabSize() {
        return vocab;
    }

    /** The longest sequence the position embeddings allow. */
    public int maxPositions() {
        return maxPositions;
    }

    /** The ids and sequence lengths this model accepts: {@code 0..vocabSize-1}, at most {@link #maxPositions}. */
    public final TokenLimits tokenLimits() {
        return new TokenLimits(vocabSize(), maxPositions());
    }

    public final KVCache newCache() {
        return new KVCache(trunk.windows());
    }

    /**
     * Whether a generation step of {@code seq} new positions after {@code past} cached ones must first drop the cache
     * and recompute the whole sequence: the step where it first passes LongRoPE's
     * {@code original_max_position_embeddings}, from which the rope table rotates with the long factors, so keys
     * cached with the short ones are stale. The recompute happens once; later steps extend the cache as usual, so
     * cached generation gives the tokens of {@code withCache(false)}, where every step is a full forward. In a
     * left-padded batch {@code past + seq} is the longest row's length, which picks the factors for every row (as
     * transformers does), so every row is recomputed.
     *
     * <p>This is what transformers 4.x meant ({@code Phi3ForCausalLM.prepare_inputs_for_generation} sets
     * {@code past_key_values = None} there). transformers 5.17's {@code generate} differs past the switch: it still
     * passes only the new token, so the recompute never happens and each later token is predicted from itself alone
     * on a throwaway cache. Ferry recomputes, as transformers 4.x did.
     */
    public boolean recomputesCacheAt(int past, int seq) {
        return longRopeSwitch > 0 && past > 0 && past <= longRopeSwitch && past + seq > longRopeSwitch;
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

    @Override
    protected Object forward(Object... args) {
        Object ids = arg(args, 0, "input ids");
        Object cache = args.length > 1 ? args[1] : null;
        Object attentionMask = args.length > 2 ? args[2] : null;
        boolean hiddenStates = args.length > 3 && args[3] == HIDDEN_STATES;
        try (NDScope scope = new NDScope()) {
            DjlTensor hidden = adopt(attentionMask == null ? trunk.call(ids, cache) : trunk.call(ids, cache, attentionMask));
            if (hiddenStates) {
                return keep(hidden);
            }
            DjlTensor logits = adopt(lmHead.call(hidden));
            if (finalSoftcap <= 0f) {
                return keep(logits);
            }
            NDArray capped = logits.array().div(finalSoftcap).tanh().mul(finalSoftcap);
            return output(capped);
        }
    }
}
