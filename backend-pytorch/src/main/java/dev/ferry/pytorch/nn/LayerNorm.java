package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;

/** {@code torch.nn.LayerNorm} over the last dimension, with weight and bias. */
public class LayerNorm extends DjlModule {

    private final long dim;
    private final float eps;

    public LayerNorm(DjlBackend backend, long dim, double eps, DType dtype) {
        super("LayerNorm", backend);
        this.dim = dim;
        this.eps = (float) eps;
        registerParameter("weight", TensorSlot.parameter(TensorSpec.of(dtype, dim)));
        registerParameter("bias", TensorSlot.parameter(TensorSpec.of(dtype, dim)));
    }

    @Override
    protected Object forward(Object... args) {
        NDArray x = array(arg(args, 0, "input"));
        try (NDScope scope = new NDScope()) {
            return output(x.getNDArrayInternal()
                    .layerNorm(x, new Shape(dim), weight("weight"), weight("bias"), eps).singletonOrThrow());
        }
    }
}
