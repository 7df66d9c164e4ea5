package dev.ferry.core.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Page-locked ("pinned") host memory: an accelerator copies from it at the link's speed (about ten times an
 * ordinary, pageable buffer on an H200), so every host buffer Ferry streams to an accelerator should be locked.
 * A backend that can lock memory (CUDA's {@code cudaHostRegister}) provides one through
 * {@link TensorBackend#pageLocking(Device)}; elsewhere {@link #NONE} keeps memory as it is. Locking may fail (the
 * process's locked-memory limit, no driver): callers then use the memory unlocked, which is correct, only slower.
 * Implementations are thread-safe.
 */
public interface PageLocking {

    /**
     * Locks the whole capacity of direct buffer {@code buffer}; true when it is now locked (also when it already
     * was). A buffer locked here must be {@link #unlock unlocked} before it is dropped.
     */
    boolean lock(ByteBuffer buffer);

    /** Undoes {@link #lock}; a buffer that was not locked is ignored. */
    void unlock(ByteBuffer buffer);

    /** Whether the bytes from {@code buffer}'s position to its limit lie in memory this locked. */
    boolean isLocked(ByteBuffer buffer);

    /** Bytes locked now through this. */
    long lockedBytes();

    /** Page size the buffers of {@link #allocate} are aligned to. */
    int PAGE = 4096;

    /**
     * A little-endian direct buffer of {@code bytes} (position 0, limit {@code bytes}) whose memory starts on a page
     * and fills whole pages: locking it never touches a page another buffer uses (a second registration of a page
     * fails in CUDA).
     */
    static ByteBuffer allocate(int bytes) {
        long rounded = ((long) bytes + PAGE - 1) & -PAGE;
        if (rounded + PAGE > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(bytes + " bytes do not fit one page-aligned direct buffer");
        }
        return ByteBuffer.allocateDirect((int) rounded + PAGE).alignedSlice(PAGE).limit(bytes)
                .order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Locks nothing: CPU execution, or a backend without page-locked memory. */
    PageLocking NONE = new PageLocking() {
        @Override
        public boolean lock(ByteBuffer buffer) {
            return false;
        }

        @Override
        public void unlock(ByteBuffer buffer) {
        }

        @Override
        public boolean isLocked(ByteBuffer buffer) {
            return false;
        }

        @Override
        public long lockedBytes() {
            return 0;
        }

        @Override
        public String toString() {
            return "PageLocking.NONE";
        }
    };
}
