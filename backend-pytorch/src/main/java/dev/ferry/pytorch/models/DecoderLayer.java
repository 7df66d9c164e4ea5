package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.Dropout;
import dev.ferry.pytorch.nn.KVCache;
import dev.ferry.pytorch.nn.RMSNorm;

/**
 * One decoder layer of the rotary families ({@code LlamaDecoderLayer}, {@code Gemma2DecoderLayer}, ...): attention
 * and MLP with residuals, the norms placed as {@link DecoderSpec.Residual} says. Children in transformers' order:
 * {@code self_attn}, {@code mlp}, {@code input_layernorm}, {@code post_attention_layernorm}, then Gemma's
 * {@code pre_feedforward_layernorm} and {@code post_feedforward_layernorm} or Phi-3's residual dropouts.
 * forward(hidden, cos, sin, mask or null, KVCache or null).
 */
public class DecoderLayer extends DjlModule {

    private final DjlModule selfAttn;
    private final DjlModule mlp;
    private final RMSNorm inputNorm;
    private final RMSNorm postAttentionNorm;
    private final RMSNorm preFeedforwardNorm;
    private final RMSNorm postFeedforwardNorm;
    private final Dropout attnDropout;
    private final Dropout mlpDropout;
    /** This layer's unmasked step in two native calls where that applies ({@code null}: never). */
    private final FusedDecoderStep fused;

    public DecoderLayer(DecoderSpec spec, int layerIdx, DjlBackend backend, DType dtype) {
        super(spec.names().decoderLayer(), backend);
        selfAttn = addChild("self_attn", new DecoderAttention(spec, layerIdx, backend, dtype));
        mlp = addChild("mlp", spec.mlp().create(spec, layerIdx, backend, dtype));
        inputNorm = addChild("input_layernorm", norm(spec, backend, dtype));
        postAttentionNorm = addChild("post_attention_layernorm", norm(spec, backend, dtype));
        boolean sandwich = spec.residual() == DecoderSpec.Residual.SANDWICH;
        preFeedforwardNorm = sandwich ? addChild("pre_feedforward_layernorm", norm(spec, backend, dtype)) : null;
        postFeedforwardNorm = sandwich ? addChild("post_feedforward_layernorm", norm(spec, backend, dtype)) : null;
        attnDropout = spec.residualDropouts() ? addChild("resid_attn_dropout", new Dropout(backend, 0)) : null;
        mlpDropout = spec.residualDropouts() ? addChild("resid_mlp_dropout", new Dropout(backend, 0)) : null;
        fused = FusedDecoderStep.of(this, spec, layerIdx, backend);
    }

    static RMSNorm norm(DecoderSpec spec, DjlBackend backend, DType dtype) {
        return new RMSNorm(spec.names().norm(), backend, spec.hidden(), spec.eps(),
                spec.norm() == DecoderSpec.Norm.RMS_UNIT_OFFSET, dtype);
    }

    @Override
    protected Object forward(Object... args) {
        NDArray h = array(arg(args, 0, "hidden states"));
        Object cos = arg(args, 1, "cos");
        Object sin = arg(args, 2, "sin");
        Object mask = args.length > 3 ? args[3] : null;
        Object cache = args.length > 4 ? args[4] : null;
        try (NDScope scope = new NDScope()) {
            if (fused != null && (cache == null || cache instanceof KVCache)) {
                NDArray out = fused.forward(h, array(cos), array(sin), mask == null ? null : array(mask),
                        (KVCache) cache);
                if (out != null) {
                    return output(out);
                }
            }
            DjlTensor attn = adopt(selfAttn.call(adopt(inputNorm.call(args[0])), cos, sin, mask, cache));
            if (attnDropout != null) {
                attn = adopt(attnDropout.call(attn), attn);
            }
            if (preFeedforwardNorm != null) {
                attn = adopt(postAttentionNorm.call(attn));
            }
            NDArray h1 = h.add(attn.array());
            RMSNorm beforeMlp = preFeedforwardNorm != null ? preFeedforwardNorm : postAttentionNorm;
            DjlTensor m = adopt(mlp.call(adopt(beforeMlp.call(scoped(h1)))));
            if (mlpDropout != null) {
                m = adopt(mlpDropout.call(m), m);
            }
            if (postFeedforwardNorm != null) {
                m = adopt(postFeedforwardNorm.call(m));
            }
            return output(h1.add(m.array()));
        }
    }
}
