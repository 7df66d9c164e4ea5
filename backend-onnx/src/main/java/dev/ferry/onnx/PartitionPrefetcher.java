package dev.ferry.onnx;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;

/**
 * Prepares offloaded partitions ahead of the run, as the core's {@code Prefetcher} does for the PyTorch
 * backend's offloaded blocks: when the partition at position {@code i} (in run order, offloaded ones only) is
 * taken, the next {@code ahead} positions, wrapping round to the first for the next run, are prepared on one
 * background thread. At most {@code ahead} prepared values wait to be taken; until taken they are owned here,
 * and {@link #close} closes whatever was prepared and never taken.
 *
 * @param <T> what preparing gives (an offloaded partition's session and weight tensors)
 */
final class PartitionPrefetcher<T extends PartitionPrefetcher.Prepared> implements AutoCloseable {

    /** A prepared value: closing it releases what preparing made. */
    interface Prepared extends AutoCloseable {
        @Override
        void close();
    }

    private final int ahead;
    private final List<Supplier<T>> order;
    private final Map<Integer, Future<T>> pending = new HashMap<>();
    private final ExecutorService worker;
    private long hits;
    private long misses;
    private boolean closed;

    /** {@code order}: how to prepare each offloaded partition, in run order. */
    PartitionPrefetcher(List<Supplier<T>> order, int ahead) {
        if (ahead < 1) {
            throw new IllegalArgumentException("partitions ahead must be at least 1, got " + ahead);
        }
        this.ahead = ahead;
        this.order = List.copyOf(order);
        this.worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "ferry-onnx-prefetch");
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Schedules the positions after {@code index}, then returns what was prepared for {@code index} (waiting
     * for it if still in flight), or {@code null} when nothing was: the caller prepares it itself. The caller
     * owns what it gets.
     */
    T take(int index) {
        Future<T> f;
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException("the prefetcher is closed");
            }
            f = pending.remove(index);
            for (int k = 1; k <= ahead && k < order.size(); k++) {
                int next = (index + k) % order.size();
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
            T value = f.get();
            synchronized (this) {
                hits++;
            }
            return value;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while preparing offloaded partition " + index, e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re; // the named error of the preparation (OnnxModelException.RuntimeFailure)
            }
            throw new IllegalStateException("preparing offloaded partition " + index + " failed: " + e.getCause(),
                    e.getCause());
        }
    }

    /** Preparations scheduled and not yet taken (ready or in flight); never more than {@code ahead}. */
    synchronized int prepared() {
        return pending.size();
    }

    /** Partitions served from a preparation made ahead. */
    synchronized long hits() {
        return hits;
    }

    /** Partitions the run prepared itself because nothing was made ahead. */
    synchronized long misses() {
        return misses;
    }

    /** Waits until no preparation is in flight (a failed one surfaces when taken). */
    void settle() {
        List<Future<T>> inFlight;
        synchronized (this) {
            inFlight = new ArrayList<>(pending.values());
        }
        for (Future<T> f : inFlight) {
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

    /** Closes what was prepared and never taken, waiting for preparations in flight; idempotent. */
    @Override
    public void close() {
        List<Future<T>> left;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            left = new ArrayList<>(pending.values());
            pending.clear();
        }
        worker.shutdown();
        for (Future<T> f : left) {
            try {
                f.get().close();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException | CancellationException ignored) {
                // nothing was made: a failed preparation closes what it had made itself
            }
        }
    }
}
