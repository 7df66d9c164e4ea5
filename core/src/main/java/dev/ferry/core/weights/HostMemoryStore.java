package dev.ferry.core.weights;

import dev.ferry.core.tensor.PageLocking;
import dev.ferry.core.tensor.ParallelCopy;
import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;

/**
 * Tensors held in host memory, each in its own direct buffer: the CPU offload store. {@link #put} copies,
 * so the store owns its bytes. Safe for concurrent use. A tensor must fit one direct buffer (under 2 GiB).
 * With a {@link PageLocking} (blocks offloaded to CPU memory and executed on an accelerator), each buffer is
 * page-locked from the moment it is filled until it is removed or the store is closed, so every forward streams
 * it at the link's speed.
 */
public final class HostMemoryStore implements WeightsStore {

    private record Held(TensorSpec spec, ByteBuffer bytes) {
    }

    private final Map<String, Held> tensors = Collections.synchronizedMap(new LinkedHashMap<>());
    private final PageLocking locking;

    /** A store of ordinary (pageable) memory. */
    public HostMemoryStore() {
        this(PageLocking.NONE);
    }

    /** A store whose buffers {@code locking} page-locks. */
    public HostMemoryStore(PageLocking locking) {
        this.locking = locking;
    }

    /** A store holding copies of {@code keys} of {@code source}, read one at a time. */
    public static HostMemoryStore copyOf(WeightsStore source, Collection<String> keys) {
        HostMemoryStore store = new HostMemoryStore();
        for (String k : keys) {
            store.put(k, source.spec(k), source.bytes(k));
        }
        return store;
    }

    /** A store holding copies of every tensor of {@code source}. */
    public static HostMemoryStore copyOf(WeightsStore source) {
        return copyOf(source, source.keys());
    }

    /**
     * Copies {@code bytes}' remaining bytes (little-endian elements of {@code spec}) into a new direct
     * buffer held under {@code name}, replacing any tensor of that name. {@code bytes} is not changed.
     */
    public void put(String name, TensorSpec spec, ByteBuffer bytes) {
        long size = spec.byteSize();
        if (bytes.remaining() != size) {
            throw new IllegalArgumentException("tensor '" + name + "' " + spec + " needs " + size
                    + " bytes, got " + bytes.remaining());
        }
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor '" + name + "' is " + size
                    + " bytes, over the 2 GiB one direct buffer can hold");
        }
        ByteBuffer copy = PageLocking.allocate((int) size);
        ParallelCopy.copy(bytes, copy);
        locking.lock(copy);
        Held old = tensors.put(name, new Held(spec, copy));
        if (old != null) {
            locking.unlock(old.bytes());
        }
    }

    /** Drops {@code name}; true when it was held. */
    public boolean remove(String name) {
        Held old = tensors.remove(name);
        if (old != null) {
            locking.unlock(old.bytes());
        }
        return old != null;
    }

    /** Bytes of this store that are page-locked. */
    public long lockedBytes() {
        synchronized (tensors) {
            return tensors.values().stream().filter(h -> locking.isLocked(h.bytes()))
                    .mapToLong(h -> h.bytes().limit()).sum();
        }
    }

    /** Bytes held across all tensors. */
    public long totalBytes() {
        synchronized (tensors) {
            return tensors.values().stream().mapToLong(h -> h.bytes().limit()).sum();
        }
    }

    private Held held(String key) {
        Held h = tensors.get(key);
        if (h == null) {
            throw new NoSuchElementException("no tensor '" + key + "' in host memory store");
        }
        return h;
    }

    @Override
    public Set<String> keys() {
        synchronized (tensors) {
            return Collections.unmodifiableSet(new LinkedHashSet<>(tensors.keySet()));
        }
    }

    @Override
    public boolean contains(String key) {
        return tensors.containsKey(key);
    }

    @Override
    public TensorSpec spec(String key) {
        return held(key).spec();
    }

    @Override
    public ByteBuffer bytes(String key) {
        return held(key).bytes().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Unlocks and drops every tensor; their memory is freed when the collector reclaims the buffers. */
    @Override
    public void close() {
        synchronized (tensors) {
            tensors.values().forEach(h -> locking.unlock(h.bytes()));
            tensors.clear();
        }
    }
}
