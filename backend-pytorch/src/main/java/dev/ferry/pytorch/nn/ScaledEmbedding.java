package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * An embedding whose rows are multiplied by a constant ({@code Gemma2TextScaledWordEmbedding}: {@code sqrt(hidden)}).
 * The constant is transformers' non-persistent float32 scalar buffer {@code embed_scale}, cast to the weight's
 * dtype before the product, as transformers does.
 */
public class ScaledEmbedding extends Embedding {

    public ScaledEmbedding(String className, DjlBackend backend, long num, long dim, float scale, DType dtype) {
        super(className, backend, num, dim, dtype);
        ByteBuffer b = ByteBuffer.allocateDirect(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, scale);
        TensorSpec spec = TensorSpec.of(DType.FLOAT32);
        registerBuffer("embed_scale", TensorSlot.buffer(spec, false)).set(backend.fromBytes(b, spec, Device.cpu()));
    }

    @Override
    protected Object forward(Object... args) {
        NDArray ids = array(arg(args, 0, "input ids"));
        try (NDScope scope = new NDScope()) {
            NDArray rows = lookup(ids);
            return output(rows.mul(weight("embed_scale").toType(rows.getDataType(), true)));
        }
    }
}
