package dev.ferry.core.load;

import dev.ferry.core.config.TokenLimits;
import dev.ferry.core.generate.LanguageModel;
import java.util.List;
import java.util.function.Supplier;

/**
 * The door of a {@link DispatchedModel}: calls pass while it is open; {@link #closeAndDrain} shuts it (new calls get
 * {@link ModelClosedException}) and waits until every call already inside has left, so that what a running forward
 * uses is freed only after it. A call that started on a thread may not close the gate it is inside of (that would wait
 * for itself): closing from inside is refused.
 */
public final class CallGate {

    private final String what;
    private int inside;
    private boolean closed;
    private final ThreadLocal<int[]> depth = ThreadLocal.withInitial(() -> new int[1]);

    /** @param what how messages name the guarded object, e.g. {@code the model} */
    public CallGate(String what) {
        this.what = what;
    }

    /** Runs {@code call} inside the gate. */
    public <T> T call(Supplier<T> call) {
        enter();
        try {
            return call.get();
        } finally {
            leave();
        }
    }

    /** Passes the gate; pair with {@link #leave()} in a {@code finally}. */
    public synchronized void enter() {
        if (closed) {
            throw new ModelClosedException(what + " is closed");
        }
        inside++;
        depth.get()[0]++;
    }

    /** Leaves the gate entered by {@link #enter()}. */
    public synchronized void leave() {
        depth.get()[0]--;
        if (--inside == 0) {
            notifyAll();
        }
    }

    /** Whether {@link #closeAndDrain} was called. */
    public synchronized boolean isClosed() {
        return closed;
    }

    /**
     * Shuts the gate and waits for the calls inside to leave; true the first time (the caller then frees what the
     * calls used), false when already closed. An interrupt while waiting is kept on the thread and waiting goes on:
     * freeing early is what must never happen.
     *
     * @throws IllegalStateException when called from inside a call of this gate
     */
    public boolean closeAndDrain() {
        if (depth.get()[0] > 0) {
            throw new IllegalStateException("close() called from inside a call of " + what
                    + "; close it after the call returns");
        }
        boolean interrupted = false;
        synchronized (this) {
            if (closed) {
                return false;
            }
            closed = true;
            while (inside > 0) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        return true;
    }

    /**
     * {@code model} with each forward ({@link LanguageModel#nextTokenLogits}, {@link LanguageModel#logits}) passing
     * this gate: a loop driven from outside sees 'closed' at its next step after a close, never a freed forward.
     */
    public LanguageModel guard(LanguageModel model) {
        return new LanguageModel() {
            @Override
            public TokenLimits tokenLimits() {
                return model.tokenLimits();
            }

            @Override
            public List<Long> eosTokenIds() {
                return model.eosTokenIds();
            }

            @Override
            public long padTokenId() {
                return model.padTokenId();
            }

            @Override
            public boolean supportsBatches() {
                return model.supportsBatches();
            }

            @Override
            public Cache newCache() {
                return call(model::newCache);
            }

            @Override
            public float[][] nextTokenLogits(long[] ids, int rows, long[] mask, Cache cache) {
                return call(() -> model.nextTokenLogits(ids, rows, mask, cache));
            }

            @Override
            public float[][] logits(long[] ids) {
                return call(() -> model.logits(ids));
            }
        };
    }
}
