package dev.ferry.core.hook;

import dev.ferry.core.module.Module;

/** Attaching and removing hooks, as Accelerate's {@code add_hook_to_module} / {@code remove_hook_from_module}. */
public final class Hooks {

    private Hooks() {
    }

    /**
     * Attaches {@code hook} to {@code module} and runs its {@code init}. With {@code append}, an existing hook
     * is kept and runs first (the two become a {@link SequentialHook}); otherwise the existing hook is
     * detached and replaced.
     */
    public static void add(Module module, ModelHook hook, boolean append) {
        ModelHook old = module.hook();
        if (append && old != null) {
            hook.init(module);
            module.setHook(SequentialHook.of(old, hook));
            return;
        }
        if (old != null) {
            old.detach(module);
        }
        module.setHook(null);
        hook.init(module);
        module.setHook(hook);
    }

    public static void add(Module module, ModelHook hook) {
        add(module, hook, false);
    }

    /**
     * Detaches and removes the hook of {@code module} (and of its subtree when {@code recurse}, children first: what
     * a parent's hook holds for the whole dispatch, such as the host copies offloaded blocks reload from, is
     * released after every hook below it has put its tensors back).
     */
    public static void remove(Module module, boolean recurse) {
        if (recurse) {
            module.children().values().forEach(c -> remove(c, true));
        }
        ModelHook h = module.hook();
        if (h != null) {
            h.detach(module);
            module.setHook(null);
        }
    }

    /** Number of hooked modules in the subtree. */
    public static int countHooked(Module root) {
        int[] n = {0};
        root.visit(m -> {
            if (m.hook() != null) {
                n[0]++;
            }
        });
        return n[0];
    }
}
