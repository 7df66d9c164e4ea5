package dev.ferry.core.hook;

import dev.ferry.core.module.Module;

/**
 * Code that runs around a module's forward, like Accelerate's {@code ModelHook}: {@code init} when attached,
 * {@code preForward} may replace the arguments, {@code postForward} may replace the output, {@code detach}
 * when removed (undoing what {@code init} did).
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

    default void detach(Module module) {
    }
}
