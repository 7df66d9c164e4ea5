package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ferry.pytorch.TorchNative;

/** Shared pieces of causal self-attention. */
public final class Attention {

    /** The additive value of a masked position (transformers uses the dtype's minimum). */
    public static final float MASKED = -Float.MAX_VALUE;

    private Attention() {
    }

    /**
     * The additive causal mask {@code [1, 1, seq, past + seq]} for {@code seq} new positions after
     * {@code past} cached ones, or {@code null} when nothing is masked (a single new position).
     */
    public static NDArray causalMask(NDManager manager, int past, int seq) {
        return causalMask(manager, past, seq, 0);
    }

    /**
     * The additive causal mask {@code [1, 1, seq, past + seq]}, hiding as well, when {@code window > 0}, every key
     * {@code window} or more positions behind its query (sliding-window attention: a query sees itself and the
     * {@code window - 1} keys before it, transformers' {@code kv_idx > q_idx - sliding_window}). {@code null} when
     * nothing is hidden.
     */
    public static NDArray causalMask(NDManager manager, int past, int seq, int window) {
        if (seq == 1 && !windowHides(past, window)) {
            return null;
        }
        int total = past + seq;
        float[] m = new float[seq * total];
        for (int i = 0; i < seq; i++) {
            for (int j = 0; j < total; j++) {
                if (hidden(past + i, j, window)) {
                    m[i * total + j] = MASKED;
                }
            }
        }
        return manager.create(m, new Shape(1, 1, seq, total));
    }

    /** Whether query column {@code q} may not see key column {@code k}: the future, or beyond a window. */
    static boolean hidden(int q, int k, int window) {
        return k > q || (window > 0 && k <= q - window);
    }

    /** Whether a window hides any key of the last of {@code past + 1} positions. */
    private static boolean windowHides(int past, int window) {
        return window > 0 && past + 1 > window;
    }

    /** {@code [b, s, heads·dim]} to {@code [b, heads, s, dim]}. */
    public static NDArray splitHeads(NDArray x, int heads, int dim) {
        Shape s = x.getShape();
        return x.reshape(s.get(0), s.get(1), heads, dim).transpose(0, 2, 1, 3);
    }

    /** {@code [b, heads, s, dim]} to {@code [b, s, heads·dim]}. */
    public static NDArray mergeHeads(NDArray x) {
        Shape s = x.getShape();
        return x.transpose(0, 2, 1, 3).reshape(s.get(0), s.get(2), s.get(1) * s.get(3));
    }

    /** Repeats each of {@code kvHeads} heads {@code groups} times: {@code [b, kv, t, d]} to {@code [b, kv·groups, t, d]}. */
    public static NDArray repeatKv(NDArray x, int groups) {
        if (groups == 1) {
            return x;
        }
        Shape s = x.getShape();
        return x.expandDims(2).repeat(2, groups).reshape(s.get(0), s.get(1) * groups, s.get(2), s.get(3));
    }

    /**
     * Attention of {@code q [b, h, s, d]} over grouped keys and values {@code [b, h/groups, t, d]}: one fused call
     * where nothing is masked or soft-capped and Ferry's native library runs it ({@link TorchNative#fusedAttention}:
     * a decode step on a GPU), else the separate ops of {@link #scaledDotProduct(NDArray, NDArray, NDArray, NDArray,
     * float, float)} over repeated key/value heads.
     */
    public static NDArray attend(NDArray q, NDArray k, NDArray v, int groups, NDArray mask, float scale,
                                 float softcap) {
        if (mask == null && softcap == 0f && TorchNative.fusedAttention(q)) {
            return TorchNative.attention(q, k, v, scale);
        }
        return scaledDotProduct(q, repeatKv(k, groups), repeatKv(v, groups), mask, scale, softcap);
    }

    /**
     * {@code softmax(q kᵀ · scale + mask) v}, the softmax in float32 as transformers' eager attention;
     * {@code mask} may be {@code null}.
     */
    public static NDArray scaledDotProduct(NDArray q, NDArray k, NDArray v, NDArray mask, float scale) {
        return scaledDotProduct(q, k, v, mask, scale, 0f);
    }

    /**
     * As {@link #scaledDotProduct(NDArray, NDArray, NDArray, NDArray, float)}, with the scores soft-capped first when
     * {@code softcap > 0}: {@code tanh(scores / cap) · cap} (Gemma 2's {@code attn_logit_softcapping}), before the mask.
     */
    public static NDArray scaledDotProduct(NDArray q, NDArray k, NDArray v, NDArray mask, float scale, float softcap) {
        NDArray scores = q.matMul(k.transpose(0, 1, 3, 2)).mul(scale);
        if (softcap > 0f) {
            scores = scores.div(softcap).tanh().mul(softcap);
        }
        scores = scores.toType(DataType.FLOAT32, false);
        if (mask != null) {
            scores = scores.add(mask);
        }
        NDArray probs = scores.softmax(-1).toType(q.getDataType(), false);
        return probs.matMul(v);
    }
}
