package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;

/**
 * Keys and values of past positions for every attention layer ({@code [batch, kvHeads, past, headDim]}),
 * like transformers' {@code DynamicCache}. It owns its arrays; each layer's stay on the device that layer
 * executes on. Not a tensor, so hooks pass it through untouched.
 */
public final class KVCache implements dev.ferry.core.generate.LanguageModel.Cache {

    private final NDArray[] keys;
    private final NDArray[] values;

    public KVCache(int layers) {
        keys = new NDArray[layers];
        values = new NDArray[layers];
    }

    public int layers() {
        return keys.length;
    }

    /** Number of cached positions (of layer 0, as transformers' {@code get_seq_length()}). */
    public int length() {
        return keys[0] == null ? 0 : (int) keys[0].getShape().get(2);
    }

    /**
     * Appends this step's keys and values (temporaries of the caller's scope) to layer {@code layer} and
     * returns the whole keys and values, owned by the cache: the caller must not close them.
     */
    public NDArray[] update(int layer, NDArray k, NDArray v) {
        NDArray oldK = keys[layer];
        NDArray oldV = values[layer];
        NDArray newK = oldK == null ? k.duplicate() : oldK.concat(k, 2);
        NDArray newV = oldV == null ? v.duplicate() : oldV.concat(v, 2);
        NDScope.unregister(newK);
        NDScope.unregister(newV);
        keys[layer] = newK;
        values[layer] = newV;
        if (oldK != null) {
            oldK.close();
            oldV.close();
        }
        return new NDArray[] {newK, newV};
    }

    @Override
    public void close() {
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
