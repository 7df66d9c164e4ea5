package dev.ferry.core.dispatch;

import dev.ferry.core.module.Module;
import java.util.Set;

/**
 * The preload rule, the one place it lives: a module whose class is a preload class is one unit: its whole
 * subtree's weights are on (or are brought to) its execution device together, and no module below it ever
 * carries a hook, whether the block is resident on an accelerator, resident on the CPU, or offloaded to CPU
 * memory or disk. (Accelerate applies it to offloaded blocks only.)
 */
public record PreloadRule(Set<String> preloadClasses) {

    public PreloadRule {
        preloadClasses = preloadClasses == null ? Set.of() : Set.copyOf(preloadClasses);
    }

    public static PreloadRule none() {
        return new PreloadRule(Set.of());
    }

    /** Whether {@code module} is a preload unit: loaded whole, and the walk of hooks stops at it. */
    public boolean isUnit(Module module) {
        return preloadClasses.contains(module.className());
    }
}
