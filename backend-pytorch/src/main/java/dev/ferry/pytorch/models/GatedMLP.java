package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.Activation;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.Linear;

/**
 * The gated MLP of the Llama-like families ({@code LlamaMLP}, {@code Gemma2MLP}, ...): {@code down_proj(act(gate) · up)}
 * with {@code gate_proj} and {@code up_proj}, or, fused (Phi-3's {@code Phi3MLP}), one {@code gate_up_proj} whose
 * output's first half is the gate and second half the up projection, and an activation named {@code activation_fn}.
 */
public class GatedMLP extends DjlModule {

    private final Linear gate;
    private final Linear up;
    private final Linear gateUp;
    private final Linear down;
    private final Activation act;
    private final long intermediate;

    public GatedMLP(DecoderSpec spec, boolean fused, DjlBackend backend, DType dtype) {
        super(spec.names().mlp(), backend);
        int hidden = spec.hidden();
        intermediate = spec.shape().intermediateSize();
        boolean bias = spec.mlpBias();
        if (fused) {
            gate = null;
            up = null;
            gateUp = addChild("gate_up_proj", new Linear(backend, hidden, 2 * intermediate, bias, dtype));
            down = addChild("down_proj", new Linear(backend, intermediate, hidden, bias, dtype));
            act = addChild("activation_fn", Activation.forName(backend, spec.activation()));
        } else {
            gateUp = null;
            gate = addChild("gate_proj", new Linear(backend, hidden, intermediate, bias, dtype));
            up = addChild("up_proj", new Linear(backend, hidden, intermediate, bias, dtype));
            down = addChild("down_proj", new Linear(backend, intermediate, hidden, bias, dtype));
            act = addChild("act_fn", Activation.forName(backend, spec.activation()));
        }
    }

    @Override
    protected Object forward(Object... args) {
        Object x = arg(args, 0, "hidden states");
        try (NDScope scope = new NDScope()) {
            NDArray g;
            NDArray u;
            if (gateUp != null) {
                NDArray both = adopt(gateUp.call(x)).array();
                NDList halves = both.split(new long[] {intermediate}, both.getShape().dimension() - 1);
                g = halves.get(0);
                u = halves.get(1);
            } else {
                g = adopt(gate.call(x)).array();
                u = adopt(up.call(x)).array();
            }
            NDArray activated = adopt(act.call(scoped(g))).array();
            return keep(adopt(down.call(scoped(activated.mul(u)))));
        }
    }
}
