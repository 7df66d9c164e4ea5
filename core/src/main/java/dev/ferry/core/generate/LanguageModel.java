package dev.ferry.core.generate;

import dev.ferry.core.config.TokenLimits;
import java.util.List;

/**
 * What generation needs of a causal language model, whatever runs it: next-token logits for token ids, with or
 * without a KV cache, one row or a left-padded, masked batch. Both backends implement it (PyTorch's
 * {@code Generator}, ONNX's {@code OnnxCausalLm}); {@link GenerationLoop} decodes over it, so greedy and seeded
 * sampling give the same tokens on either backend.
 *
 * <p>Implementations must be safe to call from several threads when the model under them is (each call brings its
 * own cache; forwards are serialised by the dispatched model).
 */
public interface LanguageModel {

    /** The vocabulary and positions, checked before any forward. */
    TokenLimits tokenLimits();

    /** The model's end-of-sequence ids (config.json's {@code eos_token_id}); empty when it has none. */
    List<Long> eosTokenIds();

    /** The id fed at padded positions of a batch (masked, so never seen). */
    default long padTokenId() {
        return 0;
    }

    /** Whether {@link #nextTokenLogits} takes several rows with a mask at once; otherwise rows run one at a time. */
    default boolean supportsBatches() {
        return false;
    }

    /** A new, empty KV cache for one generation, or {@code null} when the model keeps none (each step then feeds the whole sequence). */
    default Cache newCache() {
        return null;
    }

    /**
     * Logits of the last position of each row.
     *
     * @param ids   {@code [rows, seq]} row-major: the new tokens of this step (the whole sequence without a cache)
     * @param rows  number of rows (1 unless {@link #supportsBatches()})
     * @param mask  {@code null} for one unpadded row; else {@code [rows, past + seq]} row-major, 1 for real tokens
     * @param cache {@code null}, or from {@link #newCache()}, holding the earlier positions
     * @return {@code [rows][vocab]}
     */
    float[][] nextTokenLogits(long[] ids, int rows, long[] mask, Cache cache);

    /** Logits of every position of {@code ids} (one forward without cache), {@code [ids.length][vocab]}. */
    float[][] logits(long[] ids);

    /** The keys and values of earlier positions, owned by one generation. */
    interface Cache extends AutoCloseable {
        @Override
        void close();
    }
}
