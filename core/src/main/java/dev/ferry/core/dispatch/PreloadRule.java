package dev.ferry.core.dispatch;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.RoutedExperts;
import java.util.Set;

/**
 * The preload rule, the one place it lives: a module whose class is a preload class is one unit: its whole
 * subtree's weights are on (or are brought to) its execution device together, and no module below it ever
 * carries a hook, whether the block is resident on an accelerator, resident on the CPU, or offloaded to CPU
 * memory or disk. (Accelerate applies it to offloaded blocks only.)
 *
 * <p><b>Mixture-of-experts blocks.</b> A preload unit's routed experts ({@link RoutedExperts}) are the one part it
 * may leave out. When they live elsewhere than the unit's execution device (the map places {@code ...mlp.experts}
 * or one expert {@code ...mlp.experts.7} apart, or the unit itself is offloaded to CPU memory or disk), the unit is
 * one unit for its <em>dense</em> weights (attention, norms, router, shared experts), and every expert stored away
 * from the execution device is a unit of its own, fetched only when the router selects it: once per forward however
 * many tokens picked it (a prefill fetches the union of its tokens' experts), never ahead in block order. Experts
 * that share the unit's device and are not mapped apart stay inside the unit. A device map may split a preload unit
 * only there: its other keys must share one device.
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

    /** Whether {@code module} holds routed experts: its children are experts, units of their own when stored away. */
    public static boolean holdsRoutedExperts(Module module) {
        return module instanceof RoutedExperts;
    }

    /** The sentence {@code explain} prints under the report of a model with routed experts. */
    public static String moeSentence() {
        return "preload rule for mixture-of-experts blocks: a preloaded decoder layer whose experts live elsewhere is "
                + "one unit for its dense weights (attention, norms, router); each expert stored away from the "
                + "execution device is a unit of its own, fetched only when the router selects it, once per forward";
    }
}
