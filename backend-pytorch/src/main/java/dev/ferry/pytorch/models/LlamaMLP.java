package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.Activation;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.Linear;

/** Gated MLP: {@code down(act(gate(x)) · up(x))}. */
public class LlamaMLP extends DjlModule {

    private final Linear gate;
    private final Linear up;
    private final Linear down;
    private final Activation act;

    public LlamaMLP(String prefix, DjlBackend backend, int hidden, int intermediate, boolean bias, String act,
                    DType dtype) {
        super(prefix + "MLP", backend);
        gate = addChild("gate_proj", new Linear(backend, hidden, intermediate, bias, dtype));
        up = addChild("up_proj", new Linear(backend, hidden, intermediate, bias, dtype));
        down = addChild("down_proj", new Linear(backend, intermediate, hidden, bias, dtype));
        this.act = addChild("act_fn", Activation.forName(backend, act));
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
