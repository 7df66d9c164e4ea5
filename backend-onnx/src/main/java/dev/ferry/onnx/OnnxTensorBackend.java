package dev.ferry.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * The core's tensor SPI over ONNX Runtime Java. ORT Java has no device-resident tensors (no IOBinding): a
 * tensor is host memory tagged with the device whose session will receive it, and the provider copies it in
 * at {@code run} or session creation. Tensors over direct buffers are zero copy.
 */
public final class OnnxTensorBackend implements TensorBackend {

    private final OrtEnvironment env = OrtEnvironment.getEnvironment();
    private final OnnxDevices devices;

    public OnnxTensorBackend(OnnxDevices devices) {
        this.devices = Objects.requireNonNull(devices);
    }

    @Override
    public String name() {
        return "onnxruntime";
    }

    @Override
    public Tensor fromBytes(ByteBuffer bytes, TensorSpec spec, Device device) {
        if (bytes.remaining() != spec.byteSize()) {
            throw new IllegalArgumentException("got " + bytes.remaining() + " bytes for " + spec);
        }
        OnnxDataType type = null;
        for (OnnxDataType t : OnnxDataType.values()) {
            if (t.dtype() == spec.dtype() && t.javaType() != null) {
                type = t;
            }
        }
        if (type == null) {
            throw new IllegalArgumentException("ONNX Runtime Java cannot hold " + spec.dtype() + " tensors");
        }
        ByteBuffer direct = bytes;
        if (!bytes.isDirect()) {
            direct = ByteBuffer.allocateDirect(bytes.remaining());
            direct.put(bytes.duplicate()).flip();
        }
        try {
            OnnxTensor t = OnnxTensor.createTensor(env, direct.duplicate().order(ByteOrder.nativeOrder()),
                    spec.shape(), type.javaType());
            return new OrtTensor(t, direct, spec, device);
        } catch (OrtException e) {
            throw new IllegalArgumentException("cannot make an ORT tensor for " + spec + ": " + e.getMessage(), e);
        }
    }

    @Override
    public boolean isAvailable(Device device) {
        return devices.isAvailable(device);
    }

    /** An ORT tensor tagged with the device it is meant for; owns the {@link OnnxTensor}. */
    public static final class OrtTensor implements Tensor {
        private final OnnxTensor tensor;
        private final ByteBuffer data;
        private final TensorSpec spec;
        private final Device device;
        private boolean closed;

        OrtTensor(OnnxTensor tensor, ByteBuffer data, TensorSpec spec, Device device) {
            this.tensor = tensor;
            this.data = data;
            this.spec = spec;
            this.device = device;
        }

        public OnnxTensor onnxTensor() {
            return tensor;
        }

        @Override
        public TensorSpec spec() {
            return spec;
        }

        @Override
        public Device device() {
            return device;
        }

        @Override
        public Tensor to(Device target) {
            if (target.equals(device)) {
                return this;
            }
            ByteBuffer copy = toBytes();
            try {
                OnnxTensor t = OnnxTensor.createTensor(OrtEnvironment.getEnvironment(),
                        copy.duplicate().order(ByteOrder.nativeOrder()), spec.shape(), tensor.getInfo().type);
                return new OrtTensor(t, copy, spec, target);
            } catch (OrtException e) {
                throw new IllegalStateException("cannot copy " + spec + " to " + target + ": " + e.getMessage(), e);
            }
        }

        @Override
        public ByteBuffer toBytes() {
            ByteBuffer copy = ByteBuffer.allocateDirect(data.remaining()).order(ByteOrder.LITTLE_ENDIAN);
            copy.put(data.duplicate()).flip();
            return copy;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                tensor.close();
            }
        }
    }
}
