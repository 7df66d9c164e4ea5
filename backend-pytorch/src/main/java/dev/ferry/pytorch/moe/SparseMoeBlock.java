package dev.ferry.pytorch.moe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.DjlModule;
import java.util.List;

/**
 * A decoder layer's mixture-of-experts MLP ({@code MixtralSparseMoeBlock}, {@code Qwen3MoeSparseMoeBlock}): the router
 * {@code gate} picks each token's experts, {@code experts} runs them. forward(h {@code [b, s, H]}) returns the same
 * shape. The children's order mirrors transformers' (Mixtral registers {@code gate} first, Qwen3-MoE
 * {@code experts}).
 */
public class SparseMoeBlock extends DjlModule {

    private final TopKRouter gate;
    private final Experts experts;

    public SparseMoeBlock(String className, DjlBackend backend, TopKRouter gate, Experts experts, boolean gateFirst) {
        super(className, backend);
        if (gateFirst) {
            this.gate = addChild("gate", gate);
            this.experts = addChild("experts", experts);
        } else {
            this.experts = addChild("experts", experts);
            this.gate = addChild("gate", gate);
        }
    }

    public Experts experts() {
        return experts;
    }

    @Override
    protected Object forward(Object... args) {
        NDArray h = array(arg(args, 0, "hidden states"));
        Shape shape = h.getShape();
        try (NDScope scope = new NDScope()) {
            NDArray flat = h.reshape(-1, shape.get(shape.dimension() - 1));
            DjlTensor tokens = scoped(flat);
            List<?> routed = (List<?>) gate.call(tokens);
            DjlTensor weights = adopt(routed.get(0));
            DjlTensor indices = adopt(routed.get(1));
            NDArray y = adopt(experts.call(tokens, weights, indices)).array();
            return output(y.reshape(shape));
        }
    }
}
