package dev.ferry.pytorch.nn;

import dev.ferry.core.module.Module;
import java.util.ArrayList;
import java.util.List;

/** {@code torch.nn.ModuleList}: children named {@code 0, 1, ...}; no forward of its own. */
public class ModuleList<M extends Module> extends Module {

    private final List<M> items = new ArrayList<>();

    public ModuleList() {
        super("ModuleList");
    }

    public M add(M module) {
        addChild(Integer.toString(items.size()), module);
        items.add(module);
        return module;
    }

    public M get(int i) {
        return items.get(i);
    }

    public int size() {
        return items.size();
    }

    public List<M> items() {
        return List.copyOf(items);
    }
}
