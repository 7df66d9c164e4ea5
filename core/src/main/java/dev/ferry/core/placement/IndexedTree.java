package dev.ferry.core.placement;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A module tree flattened in pre-order (PyTorch's {@code named_modules} order) into arrays, with every module's
 * byte size computed once: the shared data structure of {@link ModuleSizes} and {@link DevicePlanner}. Node
 * {@code i}'s subtree is {@code [i, end[i])}; its children are {@code i + 1}, then {@code end} of the previous
 * child, up to {@code end[i]}.
 *
 * <p>Sizes follow Accelerate's {@code compute_module_sizes}: parameters and buffers (persistent or not); a tensor
 * shared by several modules (tied) is counted once, under its first name in tree order (a module's own tensors
 * before its children's); with a {@code dtype}, floating-point tensors count {@code min(dtype, own dtype)} bytes
 * per element and integer / bool tensors keep their own size; a {@code special} dtype for a tensor name wins.
 */
final class IndexedTree {

    final int n;
    final Module[] modules;
    final int[] parent;
    final int[] end;
    /** Bytes of the subtree, tied tensors counted once (at their first name). */
    final long[] size;
    /** Bytes of buffers in the subtree. */
    final long[] bufferSize;
    /** Whether the module owns a tensor whose first name is elsewhere (a tied duplicate) or first here. */
    final boolean[] ownsTensors;
    /** Tensors in tree order, first names only: owner node, local name, slot, counted bytes. */
    final List<TensorEntry> tensors;
    /** Groups of tied names (≥ 2) as owner nodes, first owner first; empty when nothing is tied. */
    final List<int[]> tiedOwnerGroups;
    final List<List<String>> tiedNameGroups;

    record TensorEntry(int owner, String localName, TensorSlot slot, long bytes) {
        String fullName(Module[] modules) {
            String m = modules[owner].name();
            return m.isEmpty() ? localName : m + "." + localName;
        }
    }

    private IndexedTree(int n) {
        this.n = n;
        modules = new Module[n];
        parent = new int[n];
        end = new int[n];
        size = new long[n];
        bufferSize = new long[n];
        ownsTensors = new boolean[n];
        tensors = new ArrayList<>();
        tiedOwnerGroups = new ArrayList<>();
        tiedNameGroups = new ArrayList<>();
    }

    static IndexedTree of(Module root, DType dtype, Map<String, DType> special) {
        int count = countModules(root);
        IndexedTree t = new IndexedTree(count);
        Builder b = new Builder(t, dtype, special);
        b.visit(root, -1);
        // subtree sums: children come after their parent in pre-order
        for (int i = t.n - 1; i > 0; i--) {
            t.size[t.parent[i]] += t.size[i];
            t.bufferSize[t.parent[i]] += t.bufferSize[i];
        }
        for (TensorSlot slot : b.tiedOrder) {
            t.tiedOwnerGroups.add(b.owners.get(slot).stream().mapToInt(Integer::intValue).toArray());
            t.tiedNameGroups.add(List.copyOf(b.names.get(slot)));
        }
        return t;
    }

    private static int countModules(Module m) {
        int c = 1;
        for (Module child : m.children().values()) {
            c += countModules(child);
        }
        return c;
    }

    private static final class Builder {
        final IndexedTree t;
        final DType dtype;
        final Map<String, DType> special;
        /** Slot → index of its first entry in {@code t.tensors}. */
        final Map<TensorSlot, Integer> first = new IdentityHashMap<>();
        /** Only tied slots: owners and names, first name first. */
        final Map<TensorSlot, List<Integer>> owners = new IdentityHashMap<>();
        final Map<TensorSlot, List<String>> names = new IdentityHashMap<>();
        final List<TensorSlot> tiedOrder = new ArrayList<>();
        int next;

        Builder(IndexedTree t, DType dtype, Map<String, DType> special) {
            this.t = t;
            this.dtype = dtype;
            this.special = special;
        }

        void visit(Module m, int parent) {
            int i = next++;
            t.modules[i] = m;
            t.parent[i] = parent;
            Map<String, TensorSlot> own = m.ownTensors();
            t.ownsTensors[i] = !own.isEmpty();
            for (Map.Entry<String, TensorSlot> e : own.entrySet()) {
                TensorSlot slot = e.getValue();
                Integer seen = first.putIfAbsent(slot, t.tensors.size());
                if (seen != null) {
                    List<Integer> o = owners.get(slot);
                    if (o == null) {
                        TensorEntry firstEntry = t.tensors.get(seen);
                        o = new ArrayList<>(List.of(firstEntry.owner()));
                        owners.put(slot, o);
                        names.put(slot, new ArrayList<>(List.of(firstEntry.fullName(t.modules))));
                        tiedOrder.add(slot);
                    }
                    o.add(i);
                    names.get(slot).add(full(m, e.getKey()));
                    continue;
                }
                long bytes = bytes(slot, special.isEmpty() ? null : full(m, e.getKey()), dtype, special);
                t.tensors.add(new TensorEntry(i, e.getKey(), slot, bytes));
                t.size[i] += bytes;
                if (!slot.isParameter()) {
                    t.bufferSize[i] += bytes;
                }
            }
            for (Module c : m.children().values()) {
                visit(c, i);
            }
            t.end[i] = next;
        }

        private static String full(Module m, String local) {
            return m.name().isEmpty() ? local : m.name() + "." + local;
        }
    }

    static long bytes(TensorSlot slot, String fullName, DType dtype, Map<String, DType> special) {
        DType own = slot.spec().dtype();
        long elements = slot.spec().elementCount();
        DType override = special == null || fullName == null ? null : special.get(fullName);
        if (override != null) {
            return Math.multiplyExact(elements, override.byteSize());
        }
        if (dtype == null || !own.isFloatingPoint()) {
            return slot.byteSize();
        }
        return Math.multiplyExact(elements, Math.min(dtype.byteSize(), own.byteSize()));
    }

    /** Whether {@code node} is {@code ancestor} or below it. */
    boolean isWithin(int node, int ancestor) {
        return node >= ancestor && node < end[ancestor];
    }

    boolean hasChildren(int i) {
        return end[i] > i + 1;
    }

    /** The module's own name; {@code ""} for the root. */
    String name(int i) {
        return modules[i].name();
    }

    String describe(int i) {
        return (modules[i].name().isEmpty() ? "the whole model" : "'" + modules[i].name() + "'")
                + " (" + modules[i].className() + ", " + SizeStrings.format(size[i]) + " = " + size[i] + " bytes)";
    }

    /** Node of every module whose class name is in {@code classes}. */
    boolean[] classMask(Set<String> classes) {
        boolean[] mask = new boolean[n];
        if (!classes.isEmpty()) {
            for (int i = 0; i < n; i++) {
                mask[i] = classes.contains(modules[i].className());
            }
        }
        return mask;
    }
}
