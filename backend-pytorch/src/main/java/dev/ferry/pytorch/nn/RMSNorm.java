package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;

/**
 * Root-mean-square norm ({@code LlamaRMSNorm} and its family twins): in float32,
 * {@code x · (mean(x²) + eps)^-½}, cast back to the input type, times the weight.
 */
public class RMSNorm extends DjlModule {

    private final float eps;

    public RMSNorm(String className, DjlBackend backend, long dim, double eps, DType dtype) {
        super(className, backend);
        this.eps = (float) eps;
        registerParameter("weight", TensorSlot.parameter(TensorSpec.of(dtype, dim)));
    }

    @Override
    protected Object forward(Object... args) {
        NDArray x = array(arg(args, 0, "hidden states"));
        try (NDScope scope = new NDScope()) {
            DataType in = x.getDataType();
            NDArray h = x.toType(DataType.FLOAT32, true);
            NDArray variance = h.pow(2).mean(new int[] {-1}, true);
            NDArray normed = h.mul(variance.add(eps).pow(-0.5f)).toType(in, true);
            return output(weight("weight").mul(normed));
        }
    }
}
