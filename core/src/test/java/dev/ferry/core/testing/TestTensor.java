package dev.ferry.core.testing;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** A float32 tensor of the {@link TestBackend}; using it after {@link #close} fails loudly. */
public final class TestTensor implements Tensor {

    private final TestBackend backend;
    private final TensorSpec spec;
    private final float[] data;
    private final Device device;
    private boolean closed;

    TestTensor(TestBackend backend, long[] shape, float[] data, Device device) {
        this.backend = backend;
        this.spec = new TensorSpec(shape, DType.FLOAT32);
        if (spec.elementCount() != data.length) {
            throw new IllegalArgumentException("shape " + spec + " needs " + spec.elementCount() + " values");
        }
        this.data = data;
        this.device = device;
        if (device.kind() == Device.Kind.DISK) {
            throw new IllegalArgumentException("tensors never live on disk");
        }
        backend.onCreate(spec.byteSize());
    }

    @Override
    public TensorSpec spec() {
        return spec;
    }

    @Override
    public Device device() {
        checkOpen();
        return device;
    }

    public TestBackend backend() {
        return backend;
    }

    /** The values; the tensor must be open. */
    public float[] data() {
        checkOpen();
        return data;
    }

    public TestTensor withData(float[] values, long... shape) {
        checkOpen();
        return new TestTensor(backend, shape, values, device);
    }

    @Override
    public Tensor to(Device target) {
        checkOpen();
        if (target.equals(device)) {
            return this;
        }
        if (!backend.exists(target)) {
            throw new IllegalStateException("device " + target + " does not exist");
        }
        backend.onTransfer();
        return new TestTensor(backend, spec.shape(), data.clone(), target);
    }

    @Override
    public ByteBuffer toBytes() {
        checkOpen();
        ByteBuffer b = ByteBuffer.allocate(data.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(data);
        return b;
    }

    public boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            backend.onClose(spec.byteSize());
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("tensor used after close");
        }
    }

    @Override
    public String toString() {
        return "TestTensor" + spec + "@" + device + (closed ? " (closed)" : "");
    }
}
