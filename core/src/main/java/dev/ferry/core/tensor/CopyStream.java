package dev.ferry.core.tensor;

/**
 * Copies that run beside the compute instead of after it. Blocks prepared ahead of the forward (the block
 * prefetcher's thread) are copied to their accelerator on a stream of their own, so block {@code k+1} crosses the
 * link while block {@code k} computes; on one shared stream each copy would wait for the kernels queued before it.
 * A backend without streams (the CPU, ONNX Runtime, a libtorch without Ferry's native library) uses {@link #NONE}:
 * copies then run in order with the compute, which is correct, only slower.
 */
public interface CopyStream {

    /**
     * On the thread that prepares blocks ahead, before it prepares one for {@code device}: from now on that thread's
     * copies and kernels for {@code device} go to a stream of their own.
     */
    void enter(Device device);

    /**
     * On that thread, once a block for {@code device} is prepared: returns when every copy and kernel the thread
     * issued has finished, so that the forward can use the block at once and its host buffers are free.
     */
    void complete(Device device);

    /**
     * On the forward's thread, for each tensor prepared ahead, before the forward uses it: the tensor's device memory
     * is not handed to the copy stream again until the work the forward queues on it is done.
     */
    void handOver(Tensor tensor);

    /** No streams: copies run in order with the compute. */
    CopyStream NONE = new CopyStream() {
        @Override
        public void enter(Device device) {
        }

        @Override
        public void complete(Device device) {
        }

        @Override
        public void handOver(Tensor tensor) {
        }

        @Override
        public String toString() {
            return "CopyStream.NONE";
        }
    };
}
