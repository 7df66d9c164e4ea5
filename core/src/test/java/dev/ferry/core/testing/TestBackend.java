package dev.ferry.core.testing;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Set;

/**
 * A pure-Java backend for specifying the core: float32 tensors in heap arrays that know their (pretend)
 * device, and counters for every transfer, creation and free, so tests can prove what moved and what leaked.
 */
public class TestBackend implements TensorBackend {

    private final Set<Device> devices;
    /** What host memory streamed to an accelerator is "locked" with, as a CUDA backend would page-lock it. */
    private final CountingPageLocking locking = new CountingPageLocking();
    int transfers;
    int created;
    int closed;
    long liveBytes;
    long peakBytes;

    /** A machine with the CPU and {@code accelerators} accelerators. */
    public TestBackend(int accelerators) {
        java.util.Set<Device> d = new java.util.LinkedHashSet<>();
        d.add(Device.cpu());
        for (int i = 0; i < accelerators; i++) {
            d.add(Device.accelerator(i));
        }
        this.devices = Set.copyOf(d);
    }

    @Override
    public String name() {
        return "test";
    }

    @Override
    public TestTensor fromBytes(ByteBuffer bytes, TensorSpec spec, Device device) {
        if (spec.dtype() != DType.FLOAT32) {
            throw new IllegalArgumentException("the test backend holds float32 only, got " + spec);
        }
        if (bytes.remaining() != spec.byteSize()) {
            throw new IllegalArgumentException("need " + spec.byteSize() + " bytes for " + spec + ", got "
                    + bytes.remaining());
        }
        float[] data = new float[(int) spec.elementCount()];
        bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(data);
        return new TestTensor(this, spec.shape(), data, device);
    }

    public TestTensor tensor(Device device, long[] shape, float... data) {
        return new TestTensor(this, shape, data.clone(), device);
    }

    @Override
    public dev.ferry.core.tensor.PageLocking pageLocking(Device executionDevice) {
        return executionDevice.isAccelerator() ? locking : dev.ferry.core.tensor.PageLocking.NONE;
    }

    /** The locking every accelerator's streamed host memory goes through. */
    public CountingPageLocking locking() {
        return locking;
    }

    @Override
    public boolean isAvailable(Device device) {
        return exists(device);
    }

    /** Whether the pretend machine has {@code device}: tensors can only move to these. */
    final boolean exists(Device device) {
        return devices.contains(device);
    }

    /** Cross-device copies made so far. */
    public synchronized int transfers() {
        return transfers;
    }

    /** Tensors made so far (copies, loads from bytes, forward results). */
    public synchronized int created() {
        return created;
    }

    /** Tensors alive now (made and not closed). */
    public synchronized int live() {
        return created - closed;
    }

    /** Most bytes of tensors alive at once since the last {@link #resetPeak}. */
    public synchronized long peakBytes() {
        return peakBytes;
    }

    public synchronized void resetPeak() {
        peakBytes = liveBytes;
    }

    // counters are updated from the prefetch thread too
    synchronized void onCreate(long bytes) {
        created++;
        liveBytes += bytes;
        peakBytes = Math.max(peakBytes, liveBytes);
    }

    synchronized void onClose(long bytes) {
        closed++;
        liveBytes -= bytes;
    }

    synchronized void onTransfer() {
        transfers++;
    }

    public synchronized void resetCounters() {
        transfers = 0;
    }
}
