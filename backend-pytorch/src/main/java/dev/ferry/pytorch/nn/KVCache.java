package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;

/**
 * Keys and values of past positions for every attention layer ({@code [batch, kvHeads, past, headDim]}),
 * like transformers' {@code DynamicCache}. It owns its arrays; each layer's stay on the device that layer
 * executes on. Not a tensor, so hooks pass it through untouched. A sliding-window layer keeps only its last
 * {@code window - 1} positions (as transformers' sliding cache layers do): no later query can see older ones.
 * It also records the token ids it was fed ({@link #recordTokens}), so that the whole sequence can be recomputed
 * when its keys go stale ({@code CausalLM.recomputesCacheAt}).
 */
public final class KVCache implements dev.ferry.core.generate.LanguageModel.Cache {

    private final NDArray[] keys;
    private final NDArray[] values;
    private final int[] windows;
    /** Per layer, the positions dropped from the front (sliding-window layers). */
    private final int[] dropped;
    /** The token ids fed so far, one array per row, the first {@code tokenCount} of each used (null before any). */
    private long[][] tokens;
    private int tokenCount;

    public KVCache(int layers) {
        this(new int[layers]);
    }

    /** A cache whose layer {@code i} attends to a window of {@code windows[i]} positions (0: all). */
    public KVCache(int[] windows) {
        this.windows = windows.clone();
        keys = new NDArray[windows.length];
        values = new NDArray[windows.length];
        dropped = new int[windows.length];
    }

    public int layers() {
        return keys.length;
    }

    /** Number of positions seen (of layer 0, as transformers' {@code get_seq_length()}), held or dropped. */
    public int length() {
        return held(0) + dropped[0];
    }

    /** Number of positions layer {@code layer} holds: {@link #length()}, or fewer for a sliding-window layer. */
    public int held(int layer) {
        return keys[layer] == null ? 0 : (int) keys[layer].getShape().get(2);
    }

    /**
     * Appends this step's keys and values (temporaries of the caller's scope) to layer {@code layer} and
     * returns the keys and values this step attends over (the held ones and the new ones), owned by the cache or
     * by the caller's scope: the caller must not close them.
     */
    public NDArray[] update(int layer, NDArray k, NDArray v) {
        NDArray oldK = keys[layer];
        NDArray oldV = values[layer];
        NDArray newK = oldK == null ? k.duplicate() : oldK.concat(k, 2);
        NDArray newV = oldV == null ? v.duplicate() : oldV.concat(v, 2);
        long have = newK.getShape().get(2);
        int keep = windows[layer] > 0 ? Math.max(windows[layer] - 1, 1) : Integer.MAX_VALUE;
        if (have > keep) {
            // this step attends over all of them (they stay the caller's, freed with its scope); the cache keeps the tail
            String tail = ":, :, " + (have - keep) + ":, :";
            keys[layer] = newK.get(tail).duplicate();
            values[layer] = newV.get(tail).duplicate();
            NDScope.unregister(keys[layer]);
            NDScope.unregister(values[layer]);
            dropped[layer] += (int) (have - keep);
        } else {
            NDScope.unregister(newK);
            NDScope.unregister(newV);
            keys[layer] = newK;
            values[layer] = newV;
        }
        if (oldK != null) {
            oldK.close();
            oldV.close();
        }
        return new NDArray[] {newK, newV};
    }

    /**
     * Records the ids of a step ({@code [rows, seq]} row-major, padding included) whose keys and values this cache
     * is given. Arrays grow by doubling, so recording a long generation costs linear time.
     */
    public void recordTokens(long[] step, int rows) {
        int seq = step.length / rows;
        if (tokens == null) {
            tokens = new long[rows][Math.max(16, 2 * seq)];
        } else if (tokens.length != rows) {
            throw new IllegalArgumentException("the cache holds " + tokens.length + " rows, the step has " + rows);
        }
        if (tokenCount + seq > tokens[0].length) {
            int capacity = Math.max(2 * tokens[0].length, tokenCount + seq);
            for (int r = 0; r < rows; r++) {
                tokens[r] = java.util.Arrays.copyOf(tokens[r], capacity);
            }
        }
        for (int r = 0; r < rows; r++) {
            System.arraycopy(step, r * seq, tokens[r], tokenCount, seq);
        }
        tokenCount += seq;
    }

    /**
     * The recorded ids followed by {@code step}: the whole sequence, {@code [rows, length() + seq]} row-major.
     *
     * @throws IllegalStateException when the ids recorded are not the positions the cache has seen (it was fed
     *                               without {@link #recordTokens}), or the rows differ
     */
    public long[] tokensThen(long[] step, int rows) {
        int recorded = tokens == null ? 0 : tokenCount;
        if (recorded != length() || (tokens != null && tokens.length != rows)) {
            throw new IllegalStateException("the KV cache has seen " + length() + " positions but recorded the ids of "
                    + recorded + (tokens == null ? "" : " in " + tokens.length + " rows")
                    + ": a cache to recompute must be fed through Generator.nextTokenLogits");
        }
        int seq = step.length / rows;
        int width = recorded + seq;
        long[] out = new long[rows * width];
        for (int r = 0; r < rows; r++) {
            if (recorded > 0) {
                System.arraycopy(tokens[r], 0, out, r * width, recorded);
            }
            System.arraycopy(step, r * seq, out, r * width + recorded, seq);
        }
        return out;
    }

    /** Frees every layer's keys and values and forgets the recorded ids: the cache is empty again, ready for reuse. */
    public void clear() {
        close();
    }

    @Override
    public void close() {
        tokens = null;
        tokenCount = 0;
        java.util.Arrays.fill(dropped, 0);
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) {
                keys[i].close();
                values[i].close();
                keys[i] = null;
                values[i] = null;
            }
        }
    }
}
