package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.Attention;
import dev.ferry.pytorch.nn.Conv1D;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.Dropout;
import dev.ferry.pytorch.nn.KVCache;

/** GPT-2 causal self-attention: fused {@code c_attn} projection, forward(hidden, mask or null, KVCache or null). */
public class GPT2Attention extends DjlModule {

    private final int layerIdx;
    private final int heads;
    private final int headDim;
    private final int embed;
    private final float scale;
    private final Conv1D cAttn;
    private final Conv1D cProj;
    private final Dropout residDropout;

    public GPT2Attention(DjlBackend backend, int layerIdx, int embed, int heads, boolean scaleWeights,
                         boolean scaleByLayer, double attnPdrop, double residPdrop, DType dtype) {
        super("GPT2Attention", backend);
        this.layerIdx = layerIdx;
        this.heads = heads;
        this.embed = embed;
        this.headDim = embed / heads;
        float s = scaleWeights ? (float) (1.0 / Math.sqrt(headDim)) : 1f;
        this.scale = scaleByLayer ? s / (layerIdx + 1) : s;
        cAttn = addChild("c_attn", new Conv1D(backend, embed, 3L * embed, dtype));
        cProj = addChild("c_proj", new Conv1D(backend, embed, embed, dtype));
        addChild("attn_dropout", new Dropout(backend, attnPdrop));
        residDropout = addChild("resid_dropout", new Dropout(backend, residPdrop));
    }

    @Override
    protected Object forward(Object... args) {
        Object hidden = arg(args, 0, "hidden states");
        Object maskArg = args.length > 1 ? args[1] : null;
        KVCache cache = args.length > 2 ? (KVCache) args[2] : null;
        try (NDScope scope = new NDScope()) {
            NDArray qkv = adopt(cAttn.call(hidden)).array();
            NDList parts = qkv.split(new long[] {embed, 2L * embed}, 2);
            NDArray q = Attention.splitHeads(parts.get(0), heads, headDim);
            NDArray k = Attention.splitHeads(parts.get(1), heads, headDim);
            NDArray v = Attention.splitHeads(parts.get(2), heads, headDim);
            if (cache != null) {
                NDArray[] kv = cache.update(layerIdx, k, v);
                k = kv[0];
                v = kv[1];
            }
            NDArray mask = maskArg == null ? null : array(maskArg);
            NDArray merged = Attention.mergeHeads(Attention.attend(q, k, v, 1, mask, scale, 0f));
            DjlTensor proj = adopt(cProj.call(scoped(merged)));
            return keep(adopt(residDropout.call(proj), proj));
        }
    }
}
