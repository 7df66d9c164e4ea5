package dev.ferry.core.placement;

import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.DType;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Bytes of every module and tensor of a model, Accelerate's {@code compute_module_sizes}: parameters and buffers
 * (persistent or not) count; a tied tensor counts once, under its first name in tree order (so
 * {@code lm_head} tied to {@code transformer.wte} weighs 0 here and the embedding carries the bytes). With a dtype,
 * floating-point tensors count {@code min(dtype, their own dtype)} bytes per element (loading never up-casts),
 * integer and bool tensors their own size; a per-tensor dtype in {@code specialDtypes} wins over both.
 * (Accelerate counts a bool as 1/8 byte; Ferry counts the byte a bool element really takes.)
 */
public final class ModuleSizes {

    private final IndexedTree tree;
    private Map<String, Long> byName;

    private ModuleSizes(IndexedTree tree) {
        this.tree = tree;
    }

    public static ModuleSizes of(Module root) {
        return of(root, null, Map.of());
    }

    /** @param dtype the dtype weights will be loaded in, or {@code null} for their declared dtype */
    public static ModuleSizes of(Module root, DType dtype) {
        return of(root, dtype, Map.of());
    }

    /**
     * @param dtype         the dtype weights will be loaded in, or {@code null} for their declared dtype
     * @param specialDtypes full tensor name → dtype it will be loaded in (e.g. weights kept in float32)
     */
    public static ModuleSizes of(Module root, DType dtype, Map<String, DType> specialDtypes) {
        return new ModuleSizes(IndexedTree.of(root, dtype, specialDtypes == null ? Map.of() : specialDtypes));
    }

    static ModuleSizes of(IndexedTree tree) {
        return new ModuleSizes(tree);
    }

    /** Bytes of the whole model. */
    public long total() {
        return tree.size[0];
    }

    /** Bytes of the buffers of the whole model (Accelerate's {@code compute_module_total_buffer_size}). */
    public long totalBuffers() {
        return tree.bufferSize[0];
    }

    /**
     * Bytes of a module (its subtree) or of a tensor, by full name; a tied tensor's later names and modules holding
     * only such names weigh 0.
     *
     * @throws IllegalArgumentException naming the name when the model has no such module or tensor
     */
    public long of(String name) {
        Long v = asMap().get(name);
        if (v != null) {
            return v;
        }
        Module m = tree.modules[0].find(name);
        if (m != null) {
            return 0; // a module without tensors, or holding only tied duplicates
        }
        int dot = name.lastIndexOf('.');
        Module owner = tree.modules[0].find(dot < 0 ? "" : name.substring(0, dot));
        if (owner != null && owner.ownTensors().containsKey(name.substring(dot + 1))) {
            return 0; // a later name of a tied tensor
        }
        throw new IllegalArgumentException("the model has no module or tensor '" + name + "'");
    }

    /**
     * Accelerate's {@code compute_module_sizes} result: every tensor name (first names of tied tensors) and every
     * prefix of one ({@code ""} for the whole model) → bytes, modules in tree order. Modules holding no counted
     * tensor are absent, as in Accelerate.
     */
    public Map<String, Long> asMap() {
        if (byName == null) {
            LinkedHashMap<String, Long> out = new LinkedHashMap<>();
            boolean[] hasTensor = new boolean[tree.n];
            for (IndexedTree.TensorEntry e : tree.tensors) {
                for (int p = e.owner(); p >= 0 && !hasTensor[p]; p = tree.parent[p]) {
                    hasTensor[p] = true;
                }
            }
            Map<Integer, List<IndexedTree.TensorEntry>> own = new HashMap<>();
            for (IndexedTree.TensorEntry e : tree.tensors) {
                own.computeIfAbsent(e.owner(), k -> new ArrayList<>()).add(e);
            }
            for (int i = 0; i < tree.n; i++) {
                if (hasTensor[i]) {
                    out.put(tree.name(i), tree.size[i]);
                    for (IndexedTree.TensorEntry e : own.getOrDefault(i, List.of())) {
                        out.put(e.fullName(tree.modules), e.bytes());
                    }
                }
            }
            byName = Collections.unmodifiableMap(out);
        }
        return byName;
    }

    /**
     * The largest layer, Accelerate's {@code calculate_maximum_sizes} / {@code get_max_layer_size}: a layer is a unit
     * the planner never splits: a module with no children, a module whose class is in {@code noSplitModuleClasses},
     * or a module that owns parameters or buffers itself (Ferry's device maps name modules, so such a module is
     * placed whole; Accelerate would split it into tensor-named keys). Layers inside a layer are not considered.
     */
    public Layer largestLayer(Set<String> noSplitModuleClasses) {
        boolean[] atomic = atomicMask(tree, noSplitModuleClasses);
        long max = 0;
        List<String> names = new ArrayList<>();
        int i = 0;
        while (i < tree.n) {
            if (atomic[i]) {
                if (tree.size[i] > max) {
                    max = tree.size[i];
                    names.clear();
                    names.add(tree.name(i));
                } else if (tree.size[i] == max) {
                    names.add(tree.name(i));
                }
                i = tree.end[i];
            } else {
                i++;
            }
        }
        return new Layer(max, List.copyOf(names));
    }

    /** A layer size and the names of the layers that have it, in tree order. */
    public record Layer(long bytes, List<String> names) {
    }

    static boolean[] atomicMask(IndexedTree tree, Set<String> noSplit) {
        boolean[] atomic = tree.classMask(noSplit);
        for (int i = 0; i < tree.n; i++) {
            atomic[i] |= !tree.hasChildren(i) || tree.ownsTensors[i];
        }
        return atomic;
    }

    @Override
    public String toString() {
        return "ModuleSizes" + asMap();
    }
}
