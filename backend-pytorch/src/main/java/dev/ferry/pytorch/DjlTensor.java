package dev.ferry.pytorch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * A Ferry {@link Tensor} over one DJL {@link NDArray}, which it owns: {@link #close()} frees the native
 * memory (idempotent). Tensors made by the backend (from bytes, transfers, outputs of forwards) are taken out
 * of any open {@link NDScope}, so no scope frees them behind their owner's back; inside a forward a layer may
 * wrap a temporary without doing so ({@link DjlBackend#scoped}), and the scope frees it.
 */
public final class DjlTensor implements Tensor {

    private final DjlBackend backend;
    private NDArray array;
    /** The direct buffer a CPU array may use in place (zero copy); kept reachable while the array lives. */
    private ByteBuffer backing;
    private final TensorSpec spec;
    private final Device device;

    /** Whether {@link #backing} came from the backend's staging pool and goes back there on close. */
    private final boolean pooled;

    DjlTensor(DjlBackend backend, NDArray array, ByteBuffer backing) {
        this(backend, array, backing, false);
    }

    DjlTensor(DjlBackend backend, NDArray array, ByteBuffer backing, boolean pooled) {
        this.backend = Objects.requireNonNull(backend);
        this.array = Objects.requireNonNull(array);
        this.backing = backing;
        this.pooled = pooled;
        this.spec = new TensorSpec(array.getShape().getShape(), DjlDTypes.fromDjl(array.getDataType()));
        this.device = DjlBackend.fromDjl(array.getDevice());
    }

    /** The wrapped array; an error once closed. */
    public NDArray array() {
        NDArray a = array;
        if (a == null) {
            throw new IllegalStateException("tensor " + spec + " on " + device + " is closed");
        }
        return a;
    }

    public DjlBackend backend() {
        return backend;
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
        return backend.transfer(array(), target);
    }

    @Override
    public ByteBuffer toBytes() {
        ByteBuffer native_ = array().toByteBuffer();
        ByteBuffer out = ByteBuffer.allocate(native_.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        out.put(native_.order(ByteOrder.nativeOrder()));
        return out.flip();
    }

    public boolean isClosed() {
        return array == null;
    }

    @Override
    public void close() {
        NDArray a = array;
        if (a != null) {
            ByteBuffer b = backing;
            array = null;
            backing = null;
            a.close();
            if (pooled && b != null) {
                backend.staging().release(b); // the native array that viewed it is gone
            }
        }
    }

    @Override
    public String toString() {
        return "DjlTensor " + spec + " on " + device + (array == null ? " (closed)" : "");
    }
}
