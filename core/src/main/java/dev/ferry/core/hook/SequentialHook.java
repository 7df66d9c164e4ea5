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
        for (ModelHook h : hooks) {
            a = h.preForward(module, a);
        }
        return a;
    }

    @Override
    public Object postForward(Module module, Object output) {
        Object o = output;
        for (ModelHook h : hooks) {
            o = h.postForward(module, o);
        }
        return o;
    }

    @Override
    public void detach(Module module) {
        hooks.forEach(h -> h.detach(module));
    }
}
