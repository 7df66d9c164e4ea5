package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;

/** GPT-2's {@code Conv1D}: a linear layer with the weight stored transposed, {@code [in, out]}: {@code y = x W + b}. */
public class Conv1D extends DjlModule {

    public Conv1D(DjlBackend backend, long in, long out, DType dtype) {
        super("Conv1D", backend);
        registerParameter("weight", TensorSlot.parameter(TensorSpec.of(dtype, in, out)));
        registerParameter("bias", TensorSlot.parameter(TensorSpec.of(dtype, out)));
    }

    @Override
    protected Object forward(Object... args) {
        NDArray x = array(arg(args, 0, "input"));
        try (NDScope scope = new NDScope()) {
            return output(x.matMul(weight("weight")).add(weight("bias")));
        }
    }
}
