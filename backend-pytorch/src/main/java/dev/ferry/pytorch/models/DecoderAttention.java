package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.Attention;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.KVCache;
import dev.ferry.pytorch.nn.Linear;
import dev.ferry.pytorch.nn.RMSNorm;
import dev.ferry.pytorch.nn.RotaryEmbedding;

/**
 * Self-attention of the rotary families ({@code LlamaAttention}, {@code Qwen3Attention}, {@code Gemma2Attention},
 * {@code Phi3Attention}, ...): grouped key/value heads, separate or fused ({@code qkv_proj}) projections, optional
 * per-head {@code q_norm}/{@code k_norm} before rotation, full or partial rotary, a KV cache, the family's score
 * scale and optional soft-capping. Its window, if any, is in the mask it is given.
 * forward(hidden [b, s, h], cos, sin, mask or null, KVCache or null).
 */
public class DecoderAttention extends DjlModule {

    private final int layerIdx;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final float scaling;
    private final float softcap;
    private final Linear q;
    private final Linear k;
    private final Linear v;
    private final Linear qkv;
    private final Linear o;
    private final RMSNorm qNorm;
    private final RMSNorm kNorm;

    public DecoderAttention(DecoderSpec spec, int layerIdx, DjlBackend backend, DType dtype) {
        super(spec.names().attention(), backend);
        var shape = spec.shape();
        this.layerIdx = layerIdx;
        this.heads = shape.heads();
        this.kvHeads = shape.kvHeads();
        this.headDim = shape.headDim();
        this.scaling = spec.attentionScale();
        this.softcap = spec.attentionSoftcap();
        int hidden = spec.hidden();
        long qWidth = (long) heads * headDim;
        long kvWidth = (long) kvHeads * headDim;
        if (spec.qkv() == DecoderSpec.Qkv.FUSED) {
            // transformers' Phi3Attention declares o_proj first
            o = addChild("o_proj", new Linear(backend, qWidth, hidden, spec.oBias(), dtype));
            qkv = addChild("qkv_proj", new Linear(backend, hidden, qWidth + 2 * kvWidth, spec.qkvBias(), dtype));
            q = null;
            k = null;
            v = null;
        } else {
            qkv = null;
            q = addChild("q_proj", new Linear(backend, hidden, qWidth, spec.qkvBias(), dtype));
            k = addChild("k_proj", new Linear(backend, hidden, kvWidth, spec.qkvBias(), dtype));
            v = addChild("v_proj", new Linear(backend, hidden, kvWidth, spec.qkvBias(), dtype));
            o = addChild("o_proj", new Linear(backend, qWidth, hidden, spec.oBias(), dtype));
        }
        boolean unit = spec.norm() == DecoderSpec.Norm.RMS_UNIT_OFFSET;
        qNorm = spec.qkNorm() ? addChild("q_norm", new RMSNorm(spec.names().norm(), backend, headDim, spec.eps(), unit,
                dtype)) : null;
        kNorm = spec.qkNorm() ? addChild("k_norm", new RMSNorm(spec.names().norm(), backend, headDim, spec.eps(), unit,
                dtype)) : null;
    }

    @Override
    protected Object forward(Object... args) {
        Object hidden = arg(args, 0, "hidden states");
        NDArray cos = array(arg(args, 1, "cos"));
        NDArray sin = array(arg(args, 2, "sin"));
        Object maskArg = args.length > 3 ? args[3] : null;
        KVCache cache = args.length > 4 ? (KVCache) args[4] : null;
        try (NDScope scope = new NDScope()) {
            NDArray qs;
            NDArray ks;
            NDArray vs;
            if (qkv != null) {
                long qWidth = (long) heads * headDim;
                NDArray fused = adopt(qkv.call(hidden)).array();
                NDList parts = fused.split(new long[] {qWidth, qWidth + (long) kvHeads * headDim},
                        fused.getShape().dimension() - 1);
                qs = parts.get(0);
                ks = parts.get(1);
                vs = parts.get(2);
            } else {
                qs = adopt(q.call(hidden)).array();
                ks = adopt(k.call(hidden)).array();
                vs = adopt(v.call(hidden)).array();
            }
            qs = heads(qs, heads, qNorm);
            ks = heads(ks, kvHeads, kNorm);
            vs = Attention.splitHeads(vs, kvHeads, headDim);
            qs = RotaryEmbedding.apply(qs, cos, sin);
            ks = RotaryEmbedding.apply(ks, cos, sin);
            if (cache != null) {
                NDArray[] kv = cache.update(layerIdx, ks, vs);
                ks = kv[0];
                vs = kv[1];
            }
            int groups = heads / kvHeads;
            NDArray mask = maskArg == null ? null : array(maskArg);
            NDArray attn = Attention.attend(qs, ks, vs, groups, mask, scaling, softcap);
            return keep(adopt(o.call(scoped(Attention.mergeHeads(attn)))));
        }
    }

    /** {@code [b, s, n·d]} to {@code [b, n, s, d]}, through the per-head norm first when there is one. */
    private NDArray heads(NDArray x, int n, RMSNorm norm) {
        var s = x.getShape();
        NDArray split = x.reshape(s.get(0), s.get(1), n, headDim);
        if (norm != null) {
            split = adopt(norm.call(scoped(split))).array();
        }
        return split.transpose(0, 2, 1, 3);
    }
}
