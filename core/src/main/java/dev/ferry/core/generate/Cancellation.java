package dev.ferry.core.generate;

/**
 * Lets a caller end a generation from any thread: the generation stops after its current token with
 * {@link StopReason#CANCELLED}. A deadline, when given, cancels it once passed.
 */
public final class Cancellation {

    private volatile boolean cancelled;
    private final long deadlineNanos;
    private final boolean hasDeadline;

    public Cancellation() {
        this.hasDeadline = false;
        this.deadlineNanos = 0;
    }

    private Cancellation(long deadlineNanos) {
        this.hasDeadline = true;
        this.deadlineNanos = deadlineNanos;
    }

    /** Cancelled by {@link #cancel()} or once {@code timeoutNanos} have passed from now. */
    public static Cancellation withTimeout(long timeoutNanos) {
        return new Cancellation(System.nanoTime() + timeoutNanos);
    }

    public void cancel() {
        cancelled = true;
    }

    public boolean isCancelled() {
        return cancelled || hasDeadline && System.nanoTime() - deadlineNanos > 0;
    }

    /** Whether the deadline (not {@link #cancel()}) ended it. */
    public boolean timedOut() {
        return !cancelled && hasDeadline && System.nanoTime() - deadlineNanos > 0;
    }
}
