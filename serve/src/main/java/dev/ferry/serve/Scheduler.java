package dev.ferry.serve;

import dev.ferry.core.generate.Cancellation;
import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.TextGeneration;
import dev.ferry.core.generate.TokenListener;
import dev.ferry.core.load.DispatchedModel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Shares one model among concurrent generation requests: requests wait in a bounded queue; one worker thread takes
 * every request waiting when the model is free (up to {@code maxBatch}) and decodes them together through the model's
 * batched generation ({@link DispatchedModel#generate(List)}: one left-padded, masked batch on PyTorch, where each row
 * gets what it would get alone). A request that arrives during a batch waits for the next one.
 *
 * <p>A listener that throws (a client gone) cancels its own row only; a request whose time ran out while queued is
 * answered without running; a batch that fails fails its own requests, and the worker goes on.
 */
final class Scheduler implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(Scheduler.class);

    /** A request waiting for the model. */
    private record Job(long[] prompt, GenerationConfig config, TokenListener listener, Cancellation cancellation,
                       CompletableFuture<Completion> result) {
    }

    private final DispatchedModel model;
    private final int maxBatch;
    private final BlockingQueue<Job> queue;
    private final Thread worker;
    private final AtomicInteger pending = new AtomicInteger();
    private final AtomicInteger batches = new AtomicInteger();
    private volatile boolean stopped;

    Scheduler(DispatchedModel model, int maxBatch, int maxQueued) {
        this.model = model;
        this.maxBatch = maxBatch;
        this.queue = new ArrayBlockingQueue<>(Math.max(1, maxQueued));
        this.worker = new Thread(this::work, "ferry-serve-scheduler");
        this.worker.setDaemon(true);
        this.worker.start();
    }

    /**
     * Queues a generation.
     *
     * @throws ApiException 429 when the queue is full, 503 when the server is shutting down
     */
    CompletableFuture<Completion> submit(long[] prompt, GenerationConfig config, TokenListener listener,
                                         Cancellation cancellation) {
        if (stopped) {
            throw new ApiException(503, "server_error", "the server is shutting down", null, "shutting_down");
        }
        CompletableFuture<Completion> result = new CompletableFuture<>();
        TokenListener guarded = (token, delta) -> {
            try {
                listener.onToken(token, delta);
            } catch (RuntimeException e) {
                cancellation.cancel(); // this client cannot take more; the other rows go on
            }
        };
        pending.incrementAndGet();
        result.whenComplete((c, e) -> pending.decrementAndGet());
        if (!queue.offer(new Job(prompt, config, guarded, cancellation, result))) {
            pending.decrementAndGet();
            throw new ApiException(429, "rate_limit_error", "too many requests are waiting (" + queue.size()
                    + " queued); retry later", null, "queue_full");
        }
        return result;
    }

    /** Requests queued or running. */
    int inFlight() {
        return pending.get();
    }

    /** Batches run so far. */
    int batches() {
        return batches.get();
    }

    private void work() {
        while (!stopped || !queue.isEmpty()) {
            Job first;
            try {
                first = queue.poll(100, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            if (first == null) {
                continue;
            }
            List<Job> batch = new ArrayList<>();
            batch.add(first);
            queue.drainTo(batch, maxBatch - 1);
            run(batch);
        }
    }

    private void run(List<Job> taken) {
        List<Job> batch = new ArrayList<>();
        for (Job job : taken) {
            if (job.cancellation().isCancelled()) {
                job.result().completeExceptionally(new ApiException(503, "server_error", "the request's time ran "
                        + "out while it waited for the model", null, "timeout"));
            } else {
                batch.add(job);
            }
        }
        if (batch.isEmpty()) {
            return;
        }
        List<TextGeneration.Request> requests = new ArrayList<>(batch.size());
        for (Job job : batch) {
            requests.add(new TextGeneration.Request(job.prompt(), job.config(), job.listener(), job.cancellation()));
        }
        try {
            batches.incrementAndGet();
            Completion[] out = model.generate(requests);
            for (int i = 0; i < out.length; i++) {
                batch.get(i).result().complete(out[i]);
            }
        } catch (RuntimeException e) {
            LOG.warn("a batch of {} failed: {}", batch.size(), e.toString());
            for (Job job : batch) {
                job.result().completeExceptionally(e);
            }
        }
    }

    /** Takes no more requests; waits up to {@code millis} for those queued and running to finish. */
    boolean drain(long millis) {
        stopped = true;
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while (inFlight() > 0 && System.nanoTime() < deadline) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return inFlight() == 0;
    }

    @Override
    public void close() {
        stopped = true;
        worker.interrupt();
        try {
            worker.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Job job;
        while ((job = queue.poll()) != null) {
            job.result().completeExceptionally(new ApiException(503, "server_error", "the server stopped", null,
                    "shutting_down"));
        }
    }
}
