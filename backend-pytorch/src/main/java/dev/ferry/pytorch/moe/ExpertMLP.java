package dev.ferry.pytorch.moe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.Activation;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.Linear;

/**
 * One expert: a gated MLP {@code down(act(gate(x)) · up(x))} whose children carry the names the per-expert checkpoint
 * layout uses ({@code w1}/{@code w3}/{@code w2} for Mixtral's {@code MixtralBlockSparseTop2MLP}, {@code gate_proj}/
 * {@code up_proj}/{@code down_proj} for {@code Qwen3MoeMLP}), so such checkpoints load name for name.
 */
public class ExpertMLP extends DjlModule {

    /** The local names of an expert's three projections, in the order they are registered. */
    public record Names(String gate, String up, String down, boolean upBeforeDown) {
        /** Mixtral's (transformers 4.x {@code MixtralBlockSparseTop2MLP}): w1 gate, w2 down, w3 up. */
        public static final Names MIXTRAL = new Names("w1", "w3", "w2", false);
        /** Llama-style names ({@code Qwen3MoeMLP}). */
        public static final Names GATE_UP_DOWN = new Names("gate_proj", "up_proj", "down_proj", true);
    }

    private final Linear gate;
    private final Linear up;
    private final Linear down;
    private final Activation act;

    public ExpertMLP(String className, Names names, DjlBackend backend, int hidden, int intermediate, String activation,
                     DType dtype) {
        super(className, backend);
        gate = addChild(names.gate(), new Linear(backend, hidden, intermediate, false, dtype));
        if (names.upBeforeDown()) {
            up = addChild(names.up(), new Linear(backend, hidden, intermediate, false, dtype));
            down = addChild(names.down(), new Linear(backend, intermediate, hidden, false, dtype));
        } else {
            down = addChild(names.down(), new Linear(backend, intermediate, hidden, false, dtype));
            up = addChild(names.up(), new Linear(backend, hidden, intermediate, false, dtype));
        }
        act = addChild("act_fn", Activation.forName(backend, activation));
    }

    @Override
    protected Object forward(Object... args) {
        Object x = arg(args, 0, "hidden states");
        try (NDScope scope = new NDScope()) {
            var g = adopt(act.call(adopt(gate.call(x))));
            NDArray u = adopt(up.call(x)).array();
            return keep(adopt(down.call(scoped(g.array().mul(u)))));
        }
    }
}
