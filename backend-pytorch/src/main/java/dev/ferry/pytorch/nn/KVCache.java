package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;

/**
 * Keys and values of past positions for every attention layer ({@code [batch, kvHeads, past, headDim]}),
 * like transformers' {@code DynamicCache}. It owns its arrays; each layer's stay on the device that layer
 * executes on. Not a tensor, so hooks pass it through untouched. A sliding-window layer keeps only its last
 * {@code window - 1} positions (as transformers' sliding cache layers do): no later query can see older ones.
 */
public final class KVCache implements dev.ferry.core.generate.LanguageModel.Cache {

    private final NDArray[] keys;
    private final NDArray[] values;
    private final int[] windows;
    /** Per layer, the positions dropped from the front (sliding-window layers). */
    private final int[] dropped;

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

    @Override
    public void close() {
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
