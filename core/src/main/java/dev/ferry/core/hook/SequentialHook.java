package dev.ferry.core.hook;

import dev.ferry.core.module.Module;
import java.util.ArrayList;
import java.util.List;

/** Several hooks run in order ({@code postForward} and {@code detach} in the same order, as Accelerate does). */
public final class SequentialHook implements ModelHook {

    private final List<ModelHook> hooks;

    public SequentialHook(List<ModelHook> hooks) {
        this.hooks = List.copyOf(hooks);
    }

    public List<ModelHook> hooks() {
        return hooks;
    }

    /** {@code first} followed by {@code next}, flattening nested sequences. */
    public static SequentialHook of(ModelHook first, ModelHook next) {
        List<ModelHook> all = new ArrayList<>();
        for (ModelHook h : new ModelHook[] {first, next}) {
            if (h instanceof SequentialHook s) {
                all.addAll(s.hooks);
            } else {
                all.add(h);
            }
        }
        return new SequentialHook(all);
    }

    @Override
    public void init(Module module) {
        hooks.forEach(h -> h.init(module));
    }

    @Override
    public Object[] preForward(Module module, Object[] args) {
        Object[] a = args;
        for (int i = 0; i < hooks.size(); i++) {
            try {
                a = hooks.get(i).preForward(module, a);
            } catch (RuntimeException | Error e) {
                abort(module, i, e); // the hooks before it did their part: they undo it
                throw e;
            }
        }
        return a;
    }

    @Override
    public Object postForward(Module module, Object output) {
        Object o = output;
        for (int i = 0; i < hooks.size(); i++) {
            try {
                o = hooks.get(i).postForward(module, o);
            } catch (RuntimeException | Error e) {
                // the hooks after it still hold what their preForward took
                for (int j = i + 1; j < hooks.size(); j++) {
                    try {
                        hooks.get(j).abortForward(module);
                    } catch (RuntimeException | Error cleanup) {
                        e.addSuppressed(cleanup);
                    }
                }
                throw e;
            }
        }
        return o;
    }

    /** Aborts every hook, last first; the first failure is thrown once all have run. */
    @Override
    public void abortForward(Module module) {
        RuntimeException failed = null;
        for (int j = hooks.size() - 1; j >= 0; j--) {
            try {
                hooks.get(j).abortForward(module);
            } catch (RuntimeException e) {
                if (failed == null) {
                    failed = e;
                } else {
                    failed.addSuppressed(e);
                }
            }
        }
        if (failed != null) {
            throw failed;
        }
    }

    /** Aborts the first {@code count} hooks, last first, adding their failures to {@code failure}. */
    private void abort(Module module, int count, Throwable failure) {
        for (int j = count - 1; j >= 0; j--) {
            try {
                hooks.get(j).abortForward(module);
            } catch (RuntimeException | Error cleanup) {
                failure.addSuppressed(cleanup);
            }
        }
    }

    @Override
    public void detach(Module module) {
        hooks.forEach(h -> h.detach(module));
    }
}
