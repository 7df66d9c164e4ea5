package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * A 2-D attention mask {@code [batch, past + seq]} (1 = a real token, 0 = left padding), as transformers'
 * {@code attention_mask}, read once per forward, and what the decoder stacks derive from it: position ids that
 * skip the padding and the additive 4-D mask that hides padded keys and future ones.
 */
public final class PaddingMask {

    private final long[] mask;
    private final int batch;
    private final int total;

    private PaddingMask(long[] mask, int batch, int total) {
        this.mask = mask;
        this.batch = batch;
        this.total = total;
    }

    /**
     * Reads {@code attentionMask}, which must be {@code [batch, past + seq]}.
     *
     * @throws IllegalArgumentException when its shape does not match the ids and the cache
     */
    public static PaddingMask of(NDArray attentionMask, long batch, int past, int seq) {
        Shape s = attentionMask.getShape();
        if (s.dimension() != 2 || s.get(0) != batch || s.get(1) != past + seq) {
            throw new IllegalArgumentException("attention mask has shape " + s + " but the ids and the cache need ("
                    + batch + ", " + (past + seq) + ")");
        }
        long[] m = attentionMask.toType(DataType.INT64, false).toLongArray();
        for (long v : m) {
            if (v != 0 && v != 1) {
                throw new IllegalArgumentException("attention mask values must be 0 or 1, got " + v);
            }
        }
        return new PaddingMask(m, (int) batch, past + seq);
    }

    /** Whether any position is padding (when none is, the plain causal mask is exact). */
    public boolean hasPadding() {
        for (long v : mask) {
            if (v == 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * Position ids {@code [batch, seq]} of the last {@code seq} columns, as transformers' generation computes them
     * for left padding: {@code cumsum(mask) - 1}, and 1 where the mask is 0. A row's real tokens therefore get the
     * positions they would get alone.
     */
    public NDArray positionIds(NDManager manager, int seq) {
        long[] pos = new long[batch * seq];
        for (int b = 0; b < batch; b++) {
            long sum = 0;
            for (int j = 0; j < total; j++) {
                long m = mask[b * total + j];
                sum += m;
                if (j >= total - seq) {
                    pos[b * seq + j - (total - seq)] = m == 0 ? 1 : sum - 1;
                }
            }
        }
        return manager.create(pos, new Shape(batch, seq));
    }

    /**
     * The additive mask {@code [batch, 1, seq, total]}: query {@code i} (at column {@code total - seq + i}) may
     * see key {@code j} when {@code j} is not in its future and is a real token. Each hidden entry is
     * {@link Attention#MASKED} once (never a sum of two, which would overflow to -inf), so a padded query whose
     * keys are all hidden gets finite weights, used by no real token, instead of NaN. {@code null} when nothing
     * is hidden (one new position and no padding), the same as {@link Attention#causalMask}.
     */
    public NDArray additive(NDManager manager, int seq) {
        return additive(manager, seq, 0);
    }

    /**
     * As {@link #additive(NDManager, int)}, also hiding keys {@code window} or more columns behind the query when
     * {@code window > 0}. Columns, not position ids, as transformers counts the window: a row's left padding shifts
     * its query and its keys alike, so the row's real tokens see the same keys as they would alone.
     */
    public NDArray additive(NDManager manager, int seq, int window) {
        if (!hasPadding()) {
            return Attention.causalMask(manager, total - seq, seq, window);
        }
        int past = total - seq;
        float[] m = new float[batch * seq * total];
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < seq; i++) {
                int row = (b * seq + i) * total;
                for (int j = 0; j < total; j++) {
                    if (Attention.hidden(past + i, j, window) || mask[b * total + j] == 0) {
                        m[row + j] = Attention.MASKED;
                    }
                }
            }
        }
        return manager.create(m, new Shape(batch, 1, seq, total));
    }
}
