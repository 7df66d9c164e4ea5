package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.LayerNorm;

/** GPT-2 block: {@code h + attn(ln_1(h))}, then {@code h + mlp(ln_2(h))}; forward(hidden, mask or null, KVCache or null). */
public class GPT2Block extends DjlModule {

    private final LayerNorm ln1;
    private final GPT2Attention attn;
    private final LayerNorm ln2;
    private final GPT2MLP mlp;

    public GPT2Block(DjlBackend backend, int layerIdx, GPT2Family.Dims d, DType dtype) {
        super("GPT2Block", backend);
        ln1 = addChild("ln_1", new LayerNorm(backend, d.embed(), d.eps(), dtype));
        attn = addChild("attn", new GPT2Attention(backend, layerIdx, d.embed(), d.heads(), d.scaleWeights(),
                d.scaleByLayer(), d.attnPdrop(), d.residPdrop(), dtype));
        ln2 = addChild("ln_2", new LayerNorm(backend, d.embed(), d.eps(), dtype));
        mlp = addChild("mlp", new GPT2MLP(backend, d.embed(), d.inner(), d.activation(), d.residPdrop(), dtype));
    }

    @Override
    protected Object forward(Object... args) {
        NDArray h = array(arg(args, 0, "hidden states"));
        Object mask = args.length > 1 ? args[1] : null;
        Object cache = args.length > 2 ? args[2] : null;
        try (NDScope scope = new NDScope()) {
            NDArray a = adopt(attn.call(adopt(ln1.call(args[0])), mask, cache)).array();
            NDArray h1 = h.add(a);
            NDArray m = adopt(mlp.call(adopt(ln2.call(scoped(h1))))).array();
            return output(h1.add(m));
        }
    }
}
