package dev.ferry.core.hook;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The one block prefetcher of both backends: fetches offloaded blocks ahead of the forward. Blocks are
 * registered in execution order, each with how to prepare it (the PyTorch backend: read the block's tensors from
 * their store and materialise them on the execution device; the ONNX backend: read an offloaded partition's
 * initializers and make its session). When block {@code i} is taken, the blocks after it (wrapping round to the
 * first, for the next forward) are prepared on one background thread, as many as fit in {@code blocksAhead} times
 * the largest block's bytes: so device memory holds the running block plus at most what {@code blocksAhead} of the
 * largest would take, as with a plain count, but blocks smaller than the largest go further ahead. That matters where
 * the largest block is a head streamed once per token (an 8B model's 1 GB {@code lm_head} beside int8 layers of
 * 218 MB): at the wrap round, while the resident layers run, the copy link keeps working instead of idling after two
 * small blocks. Blocks registered without a size count as equal, which is a plain count.
 *
 * <p>A prepared block is owned here until taken, then by the caller; {@link #close} releases (with the
 * {@code release} function given) whatever was prepared and never taken. Callers take blocks under their
 * dispatch's forward lock, so blocks are taken in execution order however many threads call the model.
 *
 * @param <T> what preparing a block gives
 */
public final class Prefetcher<T> implements AutoCloseable {

    private final int blocksAhead;
    private final Consumer<? super T> release;
    private final List<Supplier<? extends T>> order = new ArrayList<>();
    private final List<Long> sizes = new ArrayList<>();
    private long largest = 1;
    private final Map<Integer, Future<? extends T>> pending = new HashMap<>();
    private final ExecutorService worker;
    private long hits;
    private long misses;
    private boolean closed;

    /**
     * @param blocksAhead blocks prepared ahead, at least 1
     * @param release     frees a prepared block nobody took
     */
    public Prefetcher(int blocksAhead, Consumer<? super T> release) {
        if (blocksAhead < 1) {
            throw new IllegalArgumentException("blocks ahead must be at least 1, got " + blocksAhead);
        }
        this.blocksAhead = blocksAhead;
        this.release = Objects.requireNonNull(release, "release");
        this.worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "ferry-prefetch");
            t.setDaemon(true);
            return t;
        });
    }

    public int blocksAhead() {
        return blocksAhead;
    }

    /** Adds a block in execution order, with how to prepare it; returns its position. Counts as the largest size. */
    public synchronized int register(Supplier<? extends T> prepare) {
        return register(prepare, 0);
    }

    /**
     * Adds a block in execution order, with how to prepare it and what it takes on the device ({@code bytes}; 0 for
     * as much as the largest); returns its position.
     */
    public synchronized int register(Supplier<? extends T> prepare, long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("a block's bytes cannot be negative, got " + bytes);
        }
        order.add(Objects.requireNonNull(prepare, "prepare"));
        sizes.add(bytes);
        largest = Math.max(largest, bytes);
        return order.size() - 1;
    }

    /** What block {@code i} counts for against the bytes held ahead. */
    private long size(int i) {
        long b = sizes.get(i);
        return b == 0 ? largest : b;
    }

    /**
     * Block {@code index} if it was prepared ahead (waiting for it if still in flight), else {@code null} (also
     * once closed): the caller prepares it itself. Then schedules the blocks after it. The caller owns what it
     * gets. A preparation that failed with a runtime exception rethrows it as it was.
     */
    public T take(int index) {
        Future<? extends T> f;
        synchronized (this) {
            if (closed) {
                return null;
            }
            f = pending.remove(index);
            long held = 0;
            for (int k = 1; k < order.size(); k++) {
                int next = (index + k) % order.size();
                held += size(next);
                if (held > blocksAhead * largest) {
                    break;
                }
                if (!pending.containsKey(next)) {
                    pending.put(next, worker.submit(order.get(next)::get));
                }
            }
            if (f == null) {
                misses++;
                return null;
            }
        }
        try {
            T block = f.get();
            synchronized (this) {
                hits++;
            }
            return block;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while prefetching block " + index, e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new IllegalStateException("prefetching block " + index + " failed: " + e.getCause(), e.getCause());
        }
    }

    /**
     * Starts preparing the first block now, so that the first forward finds it ready (its read overlaps the
     * resident blocks that run before it) instead of reading it on the forward's thread.
     */
    public synchronized void start() {
        if (closed || order.isEmpty() || pending.containsKey(0)) {
            return;
        }
        pending.put(0, worker.submit(order.get(0)::get));
    }

    /**
     * Blocks prepared and not yet taken (ready or in flight): as many as fit in {@code blocksAhead} times the largest
     * block's bytes.
     */
    public synchronized int prepared() {
        return pending.size();
    }

    /** Blocks served from a prefetch. */
    public synchronized long hits() {
        return hits;
    }

    /** Blocks prepared on the forward's thread because nothing was fetched ahead. */
    public synchronized long misses() {
        return misses;
    }

    /** Waits until no preparation is in flight (a failed one surfaces when taken). */
    public void settle() {
        List<Future<? extends T>> inFlight;
        synchronized (this) {
            inFlight = new ArrayList<>(pending.values());
        }
        for (Future<? extends T> f : inFlight) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (ExecutionException | CancellationException ignored) {
                // reported by take
            }
        }
    }

    /** Waits for preparations in flight and releases what nobody took; the worker stops. Idempotent. */
    @Override
    public void close() {
        List<Future<? extends T>> left;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            left = new ArrayList<>(pending.values());
            pending.clear();
        }
        worker.shutdown();
        for (Future<? extends T> f : left) {
            try {
                release.accept(f.get());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException | CancellationException ignored) {
                // nothing was made: a failed preparation frees what it had made itself
            }
        }
    }
}
