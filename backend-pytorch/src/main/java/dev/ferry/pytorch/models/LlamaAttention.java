package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.Attention;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.KVCache;
import dev.ferry.pytorch.nn.Linear;
import dev.ferry.pytorch.nn.RotaryEmbedding;

/**
 * Llama-family self-attention with grouped key/value heads, rotary embeddings and a KV cache.
 * forward(hidden [b, s, h], cos, sin, causal mask or null, KVCache or null).
 */
public class LlamaAttention extends DjlModule {

    private final int layerIdx;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final float scaling;
    private final Linear q;
    private final Linear k;
    private final Linear v;
    private final Linear o;

    public LlamaAttention(String prefix, DjlBackend backend, int layerIdx, int hidden, int heads, int kvHeads,
                          int headDim, boolean qkvBias, boolean oBias, DType dtype) {
        super(prefix + "Attention", backend);
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + heads + " is not a multiple of "
                    + "num_key_value_heads " + kvHeads);
        }
        this.layerIdx = layerIdx;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.scaling = (float) Math.pow(headDim, -0.5);
        q = addChild("q_proj", new Linear(backend, hidden, (long) heads * headDim, qkvBias, dtype));
        k = addChild("k_proj", new Linear(backend, hidden, (long) kvHeads * headDim, qkvBias, dtype));
        v = addChild("v_proj", new Linear(backend, hidden, (long) kvHeads * headDim, qkvBias, dtype));
        o = addChild("o_proj", new Linear(backend, (long) heads * headDim, hidden, oBias, dtype));
    }

    @Override
    protected Object forward(Object... args) {
        Object hidden = arg(args, 0, "hidden states");
        NDArray cos = array(arg(args, 1, "cos"));
        NDArray sin = array(arg(args, 2, "sin"));
        Object maskArg = args.length > 3 ? args[3] : null;
        KVCache cache = args.length > 4 ? (KVCache) args[4] : null;
        try (NDScope scope = new NDScope()) {
            NDArray qs = Attention.splitHeads(adopt(q.call(hidden)).array(), heads, headDim);
            NDArray ks = Attention.splitHeads(adopt(k.call(hidden)).array(), kvHeads, headDim);
            NDArray vs = Attention.splitHeads(adopt(v.call(hidden)).array(), kvHeads, headDim);
            qs = RotaryEmbedding.apply(qs, cos, sin);
            ks = RotaryEmbedding.apply(ks, cos, sin);
            if (cache != null) {
                NDArray[] kv = cache.update(layerIdx, ks, vs);
                ks = kv[0];
                vs = kv[1];
            }
            int groups = heads / kvHeads;
            NDArray mask = maskArg == null ? null : array(maskArg);
            NDArray attn = Attention.scaledDotProduct(qs, Attention.repeatKv(ks, groups),
                    Attention.repeatKv(vs, groups), mask, scaling);
            NDArray merged = Attention.mergeHeads(attn);
            return keep(adopt(o.call(scoped(merged))));
        }
    }
}
