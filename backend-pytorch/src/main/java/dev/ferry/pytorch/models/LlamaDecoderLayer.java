package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.RMSNorm;

/**
 * Pre-norm decoder block: {@code h + attn(norm(h))}, then {@code h + mlp(norm(h))}.
 * forward(hidden, cos, sin, mask or null, KVCache or null).
 */
public class LlamaDecoderLayer extends DjlModule {

    private final LlamaAttention selfAttn;
    private final LlamaMLP mlp;
    private final RMSNorm inputNorm;
    private final RMSNorm postNorm;

    public LlamaDecoderLayer(String prefix, DjlBackend backend, int layerIdx, LlamaFamily.Dims d, DType dtype) {
        super(prefix + "DecoderLayer", backend);
        selfAttn = addChild("self_attn", new LlamaAttention(prefix, backend, layerIdx, d.hidden(), d.heads(),
                d.kvHeads(), d.headDim(), d.qkvBias(), d.oBias(), dtype));
        mlp = addChild("mlp", new LlamaMLP(prefix, backend, d.hidden(), d.intermediate(), d.mlpBias(), d.act(), dtype));
        inputNorm = addChild("input_layernorm", new RMSNorm(prefix + "RMSNorm", backend, d.hidden(), d.eps(), dtype));
        postNorm = addChild("post_attention_layernorm",
                new RMSNorm(prefix + "RMSNorm", backend, d.hidden(), d.eps(), dtype));
    }

    @Override
    protected Object forward(Object... args) {
        NDArray h = array(arg(args, 0, "hidden states"));
        Object cos = arg(args, 1, "cos");
        Object sin = arg(args, 2, "sin");
        Object mask = args.length > 3 ? args[3] : null;
        Object cache = args.length > 4 ? args[4] : null;
        try (NDScope scope = new NDScope()) {
            var normed = adopt(inputNorm.call(args[0]));
            NDArray attn = adopt(selfAttn.call(normed, cos, sin, mask, cache)).array();
            NDArray h1 = h.add(attn);
            var normed2 = adopt(postNorm.call(scoped(h1)));
            NDArray m = adopt(mlp.call(normed2)).array();
            return output(h1.add(m));
        }
    }
}
