package dev.ferry.pytorch;

import dev.ferry.core.tensor.CopyStream;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import java.util.BitSet;

/**
 * CUDA copy streams through Ferry's native library: the block prefetcher's thread copies (and converts) on a
 * stream of libtorch's pool, beside the forward's compute on the default stream. {@code complete} waits for that
 * stream, so a block is whole when handed over; {@code handOver} records the compute stream on each tensor so that
 * the caching allocator does not give its memory back to the copy stream while the compute still reads it.
 */
final class TorchCopyStream implements CopyStream {

    /** GPUs whose side stream this thread already uses. */
    private final ThreadLocal<BitSet> entered = ThreadLocal.withInitial(BitSet::new);

    @Override
    public void enter(Device device) {
        BitSet on = entered.get();
        if (device.isAccelerator() && !on.get(device.index())) {
            TorchNative.useSideStream(device.index());
            on.set(device.index());
        }
    }

    /**
     * Whether copies to {@code device} made now may be queued without waiting for each: this thread is on the copy
     * stream (so {@link #complete} will wait for them before the block is handed over) and
     * {@code -Dferry.asyncCopies=off} is not set. Measured on an H200 (2026-12-03): a block's tensors queued and
     * awaited once stream at 0.93 of the link limit where a wait per tensor, a host round trip each, reached 0.64.
     */
    boolean copiesAsync(Device device) {
        return device.isAccelerator() && entered.get().get(device.index())
                && !"off".equalsIgnoreCase(System.getProperty("ferry.asyncCopies", ""));
    }

    @Override
    public void complete(Device device) {
        if (device.isAccelerator() && entered.get().get(device.index())) {
            TorchNative.synchronizeCurrentStream(device.index());
        }
    }

    @Override
    public void handOver(Tensor tensor) {
        if (tensor instanceof DjlTensor t && tensor.device().isAccelerator()) {
            TorchNative.recordOnCurrentStream(TorchNative.handle(t.array()));
        }
    }

    @Override
    public String toString() {
        return "TorchCopyStream";
    }
}
