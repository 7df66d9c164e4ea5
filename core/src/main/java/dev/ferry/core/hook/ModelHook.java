package dev.ferry.core.hook;

import dev.ferry.core.module.Module;

/**
 * Code that runs around a module's forward, like Accelerate's {@code ModelHook}: {@code init} when attached,
 * {@code preForward} may replace the arguments, {@code postForward} may replace the output, {@code detach}
 * when removed (undoing what {@code init} did). When the forward throws, {@code abortForward} runs instead of
 * {@code postForward}, so whatever {@code preForward} took for the call (loaded weights, moved inputs, a lock)
 * is given back. Each successful {@code preForward} is followed by exactly one of the two, on the same thread.
 */
public interface ModelHook {

    default void init(Module module) {
    }

    default Object[] preForward(Module module, Object[] args) {
        return args;
    }

    default Object postForward(Module module, Object output) {
        return output;
    }

    /** The forward failed after {@code preForward} succeeded: undo what {@code preForward} did for this call. */
    default void abortForward(Module module) {
    }

    default void detach(Module module) {
    }
}
