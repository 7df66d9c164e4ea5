package dev.ferry.pytorch.nn;

/**
 * The rotary frequencies of one kind of layer, computed once from the config.
 *
 * @param invFreq              inverse frequencies, one per rotated pair ({@code rotary dim / 2}); the rotary dim may be
 *                             less than the head dim (partial rotary: the rest of each head passes unrotated)
 * @param longInvFreq          LongRoPE's frequencies for sequences past {@code originalMaxPositions}, or {@code null}
 * @param originalMaxPositions the length up to which {@code invFreq} applies (LongRoPE only)
 * @param attentionScaling     factor on cos and sin (1 for most kinds)
 */
public record RopeTable(float[] invFreq, float[] longInvFreq, int originalMaxPositions, float attentionScaling) {

    public static RopeTable of(float[] invFreq, float attentionScaling) {
        return new RopeTable(invFreq, null, 0, attentionScaling);
    }

    /** The width of the rotated part of each head. */
    public int rotaryDim() {
        return 2 * invFreq.length;
    }

    /**
     * The frequencies a forward uses whose largest position id is {@code maxPosition}: transformers'
     * {@code longrope_frequency_update} switches to the long factors once {@code maxPosition + 1} exceeds
     * {@code original_max_position_embeddings}, per forward (keys cached before the switch keep the short factors,
     * so generation recomputes its cache there: {@code CausalLM.recomputesCacheAt}). In a batch, {@code maxPosition}
     * is the longest row's, as in transformers.
     */
    public float[] frequenciesFor(long maxPosition) {
        return longInvFreq != null && maxPosition + 1 > originalMaxPositions ? longInvFreq : invFreq;
    }
}
