package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.quant.QuantizedLinears;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;

/**
 * {@code torch.nn.Linear}: {@code y = x Wᵀ + b}, weight {@code [out, in]}. With int8 weights ({@link #useInt8Weights})
 * the weight is int8 {@code [out, in]} and {@code weight_scale} {@code [out, 1]} is in the compute dtype; the forward
 * dequantizes on the device the weight was brought to, {@code W = weight · weight_scale}, then runs the same linear.
 * So what is held in host memory, read from disk and copied to the GPU is the int8 bytes; the dequantized weight is a
 * temporary of the forward, freed when it returns.
 */
public class Linear extends DjlModule {

    private boolean int8;

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

    /**
     * Declares the weight as int8 {@code [out, in]} with per-output-channel scales {@code weight_scale [out, 1]} in
     * the weight's dtype (the compute dtype). Only on meta, before anything is loaded; a second call does nothing.
     */
    public void useInt8Weights() {
        if (int8) {
            return;
        }
        TensorSlot w = tensor(QuantizedLinears.WEIGHT);
        if (w.isMaterialised()) {
            throw new IllegalStateException(this + ": weights are quantized on meta, before loading; '" + name()
                    + ".weight' is already on " + w.device());
        }
        if (!w.spec().dtype().isFloatingPoint() || w.spec().rank() != 2) {
            throw new IllegalStateException(this + ": weight " + w.spec() + " is not a floating-point [out, in] matrix");
        }
        TensorSpec spec = w.spec();
        replaceTensor(QuantizedLinears.WEIGHT, TensorSlot.parameter(spec.withDType(DType.INT8)));
        registerParameter(QuantizedLinears.SCALE, TensorSlot.parameter(TensorSpec.of(spec.dtype(), spec.dim(0), 1)));
        int8 = true;
    }

    /** Whether the weight is held as int8 with scales. */
    public boolean hasInt8Weights() {
        return int8;
    }

    @Override
    protected Object forward(Object... args) {
        NDArray x = array(arg(args, 0, "input"));
        try (NDScope scope = new NDScope()) {
            NDArray w = weight(QuantizedLinears.WEIGHT);
            if (int8) {
                NDArray scale = weight(QuantizedLinears.SCALE);
                w = w.toType(scale.getDataType(), false).mul(scale); // on the execution device, freed with the scope
            }
            NDArray y = x.getNDArrayInternal().linear(x, w, optionalWeight("bias")).singletonOrThrow();
            return output(y);
        }
    }
}
