package dev.ferry.core.testing;

import dev.ferry.core.tensor.PageLocking;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/** A pretend page locking that records which buffers are locked (by identity), for tests of who locks and unlocks. */
public final class CountingPageLocking implements PageLocking {

    private final List<ByteBuffer> locked = new ArrayList<>();

    @Override
    public synchronized boolean lock(ByteBuffer buffer) {
        if (!isLocked(buffer)) {
            locked.add(buffer);
        }
        return true;
    }

    @Override
    public synchronized void unlock(ByteBuffer buffer) {
        locked.removeIf(x -> x == buffer);
    }

    @Override
    public synchronized boolean isLocked(ByteBuffer buffer) {
        return locked.stream().anyMatch(x -> x == buffer);
    }

    @Override
    public synchronized long lockedBytes() {
        return locked.stream().mapToLong(ByteBuffer::capacity).sum();
    }

    /** The locked buffers, in locking order. */
    public synchronized List<ByteBuffer> buffers() {
        return List.copyOf(locked);
    }
}
