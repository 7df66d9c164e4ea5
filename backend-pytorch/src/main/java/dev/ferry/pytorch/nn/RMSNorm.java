package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;

/**
 * Root-mean-square norm ({@code LlamaRMSNorm} and its family twins): in float32, {@code x · (mean(x²) + eps)^-½},
 * then either cast back to the input type and times the weight (Llama), or, with a unit offset, times
 * {@code 1 + weight} still in float32 and then cast back (Gemma, whose weights are stored as offsets from 1).
 */
public class RMSNorm extends DjlModule {

    private final float eps;
    private final boolean unitOffset;

    public RMSNorm(String className, DjlBackend backend, long dim, double eps, DType dtype) {
        this(className, backend, dim, eps, false, dtype);
    }

    public RMSNorm(String className, DjlBackend backend, long dim, double eps, boolean unitOffset, DType dtype) {
        super(className, backend);
        this.eps = (float) eps;
        this.unitOffset = unitOffset;
        registerParameter("weight", TensorSlot.parameter(TensorSpec.of(dtype, dim)));
    }

    @Override
    protected Object forward(Object... args) {
        NDArray x = array(arg(args, 0, "hidden states"));
        try (NDScope scope = new NDScope()) {
            DataType in = x.getDataType();
            NDArray h = x.toType(DataType.FLOAT32, true);
            NDArray normed = h.mul(h.pow(2).mean(new int[] {-1}, true).add(eps).pow(-0.5f));
            if (unitOffset) {
                return output(normed.mul(weight("weight").toType(DataType.FLOAT32, true).add(1f)).toType(in, true));
            }
            return output(weight("weight").mul(normed.toType(in, true)));
        }
    }
}
