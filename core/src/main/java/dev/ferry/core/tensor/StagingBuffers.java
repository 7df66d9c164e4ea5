package dev.ferry.core.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.TreeMap;

/**
 * Direct host buffers reused across forwards, for dtype conversion and host staging of streamed weights:
 * once warm, streaming an offloaded block allocates nothing (a fresh direct buffer per tensor per forward
 * costs a zeroing pass, and its memory comes back only when the GC runs the buffer's cleaner). Idle buffers
 * kept are bounded by {@code maxIdleBytes}; buffers in use are not counted. With a {@link PageLocking}, each new
 * buffer is page-locked once and stays locked while pooled, so staging for an accelerator pays the lock once, not
 * per forward. Thread-safe: the prefetch thread acquires, the forward's thread releases.
 */
public final class StagingBuffers implements AutoCloseable {

    private final long maxIdleBytes;
    private final PageLocking locking;
    private final TreeMap<Integer, ArrayDeque<ByteBuffer>> idle = new TreeMap<>();
    private long idleBytes;
    private long allocated;
    private long reused;

    public StagingBuffers(long maxIdleBytes) {
        this(maxIdleBytes, PageLocking.NONE);
    }

    public StagingBuffers(long maxIdleBytes, PageLocking locking) {
        this.maxIdleBytes = maxIdleBytes;
        this.locking = locking;
    }

    /** How new buffers are locked ({@link PageLocking#NONE}: not at all). */
    public PageLocking locking() {
        return locking;
    }

    /**
     * A little-endian direct buffer with position 0 and limit {@code bytes}: an idle one of at least that
     * capacity (and not more than twice, so small requests do not pin big buffers), else a new one.
     */
    public synchronized ByteBuffer acquire(int bytes) {
        Map.Entry<Integer, ArrayDeque<ByteBuffer>> e = idle.ceilingEntry(bytes);
        if (e != null && e.getKey() <= Math.max(2L * bytes, PageLocking.PAGE)) {
            ByteBuffer b = e.getValue().pop();
            if (e.getValue().isEmpty()) {
                idle.remove(e.getKey());
            }
            idleBytes -= b.capacity();
            reused++;
            return b.clear().limit(bytes).order(ByteOrder.LITTLE_ENDIAN);
        }
        allocated++;
        ByteBuffer fresh = PageLocking.allocate(bytes);
        locking.lock(fresh);
        return fresh;
    }

    /** Gives {@code buffer} back; the caller must not use it (nor anything viewing it) afterwards. */
    public synchronized void release(ByteBuffer buffer) {
        if (!buffer.isDirect()) {
            return;
        }
        if (idleBytes + buffer.capacity() > maxIdleBytes) {
            locking.unlock(buffer);
            return; // the GC frees it
        }
        idle.computeIfAbsent(buffer.capacity(), k -> new ArrayDeque<>()).push(buffer);
        idleBytes += buffer.capacity();
    }

    /** Buffers made because no idle one fitted. */
    public synchronized long allocated() {
        return allocated;
    }

    /** Requests served by an idle buffer. */
    public synchronized long reused() {
        return reused;
    }

    public synchronized long idleBytes() {
        return idleBytes;
    }

    /** Unlocks and drops every idle buffer; buffers still in use are unlocked when released. */
    @Override
    public synchronized void close() {
        idle.values().forEach(q -> q.forEach(locking::unlock));
        idle.clear();
        idleBytes = 0;
    }
}
