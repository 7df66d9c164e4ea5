package dev.ferry.core.hook;

import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Streams offloaded blocks ahead of the forward: while block {@code i} runs, the next {@code blocksAhead}
 * blocks (in execution order, wrapping round to the first for the next forward) are read from their store
 * and materialised on their execution device on a background thread. At most {@code blocksAhead} blocks are
 * in flight, so device memory holds the running block plus those. Shared by the offload hooks of one
 * dispatch; closing it frees whatever was fetched and not used. The hooks take blocks under their dispatch's
 * forward lock, so blocks are taken in execution order however many threads call the model; a block fetched ahead
 * belongs to whichever forward takes it, and only that forward installs and frees it.
 */
public final class Prefetcher implements AutoCloseable {

    private final int blocksAhead;
    private final List<AlignDevicesHook> order = new ArrayList<>();
    private final Map<Integer, Future<Map<TensorSlot, Tensor>>> pending = new HashMap<>();
    private final ExecutorService worker;
    private long hits;
    private long misses;
    private boolean closed;

    public Prefetcher(int blocksAhead) {
        if (blocksAhead < 1) {
            throw new IllegalArgumentException("blocks ahead must be at least 1, got " + blocksAhead);
        }
        this.blocksAhead = blocksAhead;
        this.worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "ferry-prefetch");
            t.setDaemon(true);
            return t;
        });
    }

    public int blocksAhead() {
        return blocksAhead;
    }

    /** Adds a block in execution order; returns its position. */
    synchronized int register(AlignDevicesHook hook) {
        order.add(hook);
        return order.size() - 1;
    }

    /**
     * The tensors of block {@code index} if they were fetched ahead (waiting for them if still in flight),
     * else {@code null}; then schedules the blocks after it.
     */
    Map<TensorSlot, Tensor> take(int index) {
        Future<Map<TensorSlot, Tensor>> f;
        synchronized (this) {
            if (closed) {
                return null;
            }
            f = pending.remove(index);
            for (int k = 1; k <= blocksAhead && k < order.size(); k++) {
                int next = (index + k) % order.size();
                if (!pending.containsKey(next)) {
                    AlignDevicesHook hook = order.get(next);
                    pending.put(next, worker.submit(() -> hook.materialiseBlock(true)));
                }
            }
        }
        if (f == null) {
            synchronized (this) {
                misses++;
            }
            return null;
        }
        try {
            Map<TensorSlot, Tensor> block = f.get();
            synchronized (this) {
                hits++;
            }
            return block;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while prefetching " + order.get(index), e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("prefetching " + order.get(index) + " failed: " + e.getCause(), e.getCause());
        }
    }

    /**
     * Starts fetching the first block now, so that the first forward finds it ready (its read overlaps the
     * resident blocks that run before it) instead of reading it on the forward's thread.
     */
    public void start() {
        synchronized (this) {
            if (closed || order.isEmpty() || pending.containsKey(0)) {
                return;
            }
            AlignDevicesHook first = order.get(0);
            pending.put(0, worker.submit(() -> first.materialiseBlock(true)));
        }
    }

    /** Blocks served from a prefetch. */
    public synchronized long hits() {
        return hits;
    }

    /** Blocks loaded on the forward's thread because nothing was fetched ahead. */
    public synchronized long misses() {
        return misses;
    }

    /** Waits for in-flight fetches and frees their tensors; the worker stops. Idempotent. */
    @Override
    public void close() {
        List<Future<Map<TensorSlot, Tensor>>> left;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            left = new ArrayList<>(pending.values());
            pending.clear();
        }
        for (Future<Map<TensorSlot, Tensor>> f : left) {
            try {
                f.get().values().forEach(Tensor::close);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException | CancellationException ignored) {
                // nothing was materialised
            }
        }
        worker.shutdown();
    }
}
