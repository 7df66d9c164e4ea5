package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;

/** {@code torch.nn.Linear}: {@code y = x Wᵀ + b}, weight {@code [out, in]}. */
public class Linear extends DjlModule {

    public Linear(DjlBackend backend, long in, long out, boolean bias, DType dtype) {
        super("Linear", backend);
        registerParameter("weight", TensorSlot.parameter(TensorSpec.of(dtype, out, in)));
        if (bias) {
            registerParameter("bias", TensorSlot.parameter(TensorSpec.of(dtype, out)));
        }
    }

    /** A bias-free Linear whose weight is an existing slot (tied parameters, e.g. {@code lm_head}). */
    public Linear(DjlBackend backend, TensorSlot tiedWeight) {
        super("Linear", backend);
        registerParameter("weight", tiedWeight);
    }

    @Override
    protected Object forward(Object... args) {
        NDArray x = array(arg(args, 0, "input"));
        try (NDScope scope = new NDScope()) {
            NDArray y = x.getNDArrayInternal().linear(x, weight("weight"), optionalWeight("bias")).singletonOrThrow();
            return output(y);
        }
    }
}
