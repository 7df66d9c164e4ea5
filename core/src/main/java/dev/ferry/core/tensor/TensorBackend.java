package dev.ferry.core.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.function.Consumer;
import java.util.OptionalLong;

/**
 * What the core needs from a tensor library (DJL/PyTorch, ONNX Runtime, the pure-Java test backend):
 * make tensors from stored bytes on a device, and say which devices exist. Moving and freeing are on
 * {@link Tensor} itself.
 */
public interface TensorBackend {

    String name();

    /**
     * A tensor on {@code device} holding {@code bytes} (little-endian, exactly {@code spec.byteSize()} long,
     * position to limit). A CPU tensor may use the buffer in place (zero copy from a memory-mapped file), so
     * the caller keeps the buffer alive while the tensor lives. The result is owned by the caller.
     */
    Tensor fromBytes(ByteBuffer bytes, TensorSpec spec, Device device);

    /**
     * Like {@link #fromBytes(ByteBuffer, TensorSpec, Device)}, for bytes stored as {@code spec.dtype()} and a
     * tensor wanted as {@code target} (a bfloat16 checkpoint into a float32 model). The default converts in
     * Java first; a backend may convert on the device instead.
     */
    default Tensor fromBytes(ByteBuffer bytes, TensorSpec spec, Device device, DType target) {
        if (spec.dtype() == target) {
            return fromBytes(bytes, spec, device);
        }
        if (!DTypeConversion.supports(spec.dtype(), target)) {
            throw new IllegalArgumentException("cannot convert " + spec + " to " + target.torchName());
        }
        return fromBytes(DTypeConversion.convert(bytes, spec.dtype(), target), spec.withDType(target), device);
    }

    /**
     * A tensor on {@code device} (as {@code target}) of bytes stored as {@code spec}, which {@code fill} writes into a
     * host buffer this backend owns (position 0, room for exactly {@code spec.byteSize()}): how weights streamed from a
     * file reach a device without native code ever reading the file's pages in place. A backend reuses its buffers
     * (page-locked where the device copies faster from them); the default allocates one. If {@code fill} throws,
     * nothing is left behind and the exception propagates.
     */
    default Tensor fromFilled(TensorSpec spec, Device device, DType target, Consumer<ByteBuffer> fill) {
        if (spec.byteSize() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + spec + " is over the 2 GiB one buffer can hold");
        }
        ByteBuffer buffer = ByteBuffer.allocateDirect((int) spec.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        fill.accept(buffer);
        buffer.flip();
        return fromBytes(buffer, spec, device, target);
    }

    /** Whether this backend can execute on {@code device} on this machine. */
    boolean isAvailable(Device device);

    /**
     * How host memory streamed to {@code executionDevice} is page-locked: {@link PageLocking#NONE} unless the
     * backend executes there on an accelerator that copies faster from locked memory.
     */
    default PageLocking pageLocking(Device executionDevice) {
        return PageLocking.NONE;
    }

    /**
     * How blocks prepared ahead of the forward reach {@code executionDevice} beside its compute: {@link CopyStream#NONE}
     * unless the backend has copy streams there.
     */
    default CopyStream copyStream(Device executionDevice) {
        return CopyStream.NONE;
    }

    /** Free memory of an accelerator, when the backend can tell. */
    default OptionalLong freeMemory(Device device) {
        return OptionalLong.empty();
    }
}
