package dev.ferry.onnx;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.Device;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;

/**
 * Cuts a graph into {@link Partition}s by a plan.
 *
 * <p><b>Units.</b> Each device-map key is a block. A block inside (or equal to) a module of a preload class
 * is widened to that module, which is one unit, never cut (two keys inside one such module with different
 * devices are an {@link OnnxModelException.InvalidPlan}). A resident block is one unit: it is placed on its
 * device once. An offloaded block without a preload class is split the way the core hooks it: every module
 * of its subtree that owns tensors (or is of a preload class, taken whole) is a unit of its own, loading its
 * weights just for its own ops; the block's other ops (attention arithmetic, residual additions) stay with
 * the block's units where the dataflow allows.
 *
 * <p><b>Dataflow.</b> Partitions form a chain: each node gets a partition index that never decreases along an
 * edge, so the partition graph is acyclic by construction. Nodes of units are placed in topological order
 * into the latest piece of their unit that comes after all their producers, opening a new piece when none
 * does (a unit whose dataflow interleaves with another's is cut; a preloaded unit never is). Nodes outside
 * every unit (the causal mask of {@code LlamaModel}, shape arithmetic) go to the earliest partition that
 * consumes them, or, for an offloaded block's own loose ops, to the latest partition of that block the
 * dataflow allows.
 */
public final class GraphPartitioner {

    private GraphPartitioner() {
    }

    private record Unit(String path, String block, Device storage, boolean preload) {
    }

    public static List<Partition> partition(OnnxModuleTree tree, OnnxPlan plan) {
        OnnxModel model = tree.model();
        Map<String, Device> map = plan.deviceMap().entries();
        checkScopes(tree, map);

        // ---- units ----
        LinkedHashMap<String, Unit> units = new LinkedHashMap<>();
        for (Map.Entry<String, Device> e : map.entrySet()) {
            String key = e.getKey();
            Device storage = e.getValue();
            String preloadRoot = preloadAncestor(tree, key, plan.preloadClasses());
            if (preloadRoot != null) {
                Unit old = units.get(preloadRoot);
                if (old != null && !old.storage.equals(storage)) {
                    throw new OnnxModelException.InvalidPlan("the device map puts parts of '" + preloadRoot + "' ("
                            + tree.module(preloadRoot).className() + ", a preload class) on " + old.storage + " and "
                            + storage + "; a preloaded unit is never cut: map it as one");
                }
                units.put(preloadRoot, new Unit(preloadRoot, key.length() < preloadRoot.length() ? key : preloadRoot,
                        storage, true));
                continue;
            }
            if (!plan.isOffloaded(storage)) {
                units.put(key, new Unit(key, key, storage, false));
                continue;
            }
            units.put(key, new Unit(key, key, storage, false)); // the block itself: its loose ops' home
            collectHookedModules(tree.module(key), key, storage, plan.preloadClasses(), units);
        }

        // ---- node → unit (deepest unit path covering its scope), node → block ----
        int n = model.nodes().size();
        int[] order = topologicalOrder(model);
        List<Unit> unitList = new ArrayList<>(units.values());
        Map<String, Integer> unitIndex = new HashMap<>();
        for (int i = 0; i < unitList.size(); i++) {
            unitIndex.put(unitList.get(i).path, i);
        }
        int[] unitOf = new int[n];
        String[] blockOf = new String[n];
        for (int i = 0; i < n; i++) {
            String scope = tree.scopeOf(i);
            Integer u = deepestCovering(scope, unitIndex);
            unitOf[i] = -1;
            blockOf[i] = plan.deviceMap().keyOf(scope);
            if (u != null) {
                Unit unit = unitList.get(u);
                boolean looseOpOfOffloadedBlock = !unit.preload && plan.isOffloaded(unit.storage)
                        && unit.path.equals(unit.block) && hasHookedUnitsBelow(unit.path, unitList);
                unitOf[i] = looseOpOfOffloadedBlock ? -1 : u;
                if (unit.preload) {
                    blockOf[i] = unit.block;
                }
            }
        }

        // ---- pass 1: units' nodes into pieces; loose nodes' earliest piece ----
        Map<String, List<Integer>> producersOf = new HashMap<>();
        List<Integer> pieceUnit = new ArrayList<>();
        Map<Integer, Integer> lastPieceOfUnit = new HashMap<>();
        int[] piece = new int[n];
        int[] early = new int[n];
        boolean[] loose = new boolean[n];
        Map<String, Integer> producer = new HashMap<>();
        for (int i = 0; i < n; i++) {
            for (String out : model.node(i).getOutputList()) {
                if (!out.isEmpty()) {
                    producer.put(out, i);
                }
            }
        }
        List<List<Integer>> consumers = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            consumers.add(new ArrayList<>());
        }
        for (int i = 0; i < n; i++) {
            for (String in : OnnxModel.consumedValues(model.node(i))) {
                Integer p = producer.get(in);
                if (p != null) {
                    consumers.get(p).add(i);
                }
            }
        }
        for (int i : order) {
            int e = 0;
            for (String in : OnnxModel.consumedValues(model.node(i))) {
                Integer p = producer.get(in);
                if (p != null) {
                    e = Math.max(e, loose[p] ? early[p] : piece[p]);
                }
            }
            if (unitOf[i] < 0) {
                loose[i] = true;
                early[i] = e;
                continue;
            }
            Integer last = lastPieceOfUnit.get(unitOf[i]);
            if (last != null && last >= e) {
                piece[i] = last;
            } else {
                Unit u = unitList.get(unitOf[i]);
                if (last != null && u.preload) {
                    throw new OnnxModelException.InvalidPlan("'" + u.path + "' is a preloaded unit but its ops "
                            + "interleave with other blocks' (node " + model.node(i).getName() + " needs a value "
                            + "computed after the unit started): it cannot run as one partition");
                }
                piece[i] = pieceUnit.size();
                pieceUnit.add(unitOf[i]);
                lastPieceOfUnit.put(unitOf[i], piece[i]);
            }
        }
        if (pieceUnit.isEmpty()) {
            throw new OnnxModelException.InvalidPlan("the device map " + map.keySet() + " covers no op of the graph");
        }

        // ---- pass 2 (reverse): loose nodes to the earliest consumer, or their own block's latest piece ----
        Set<String> graphOutputs = new HashSet<>(model.outputNames());
        for (int k = order.length - 1; k >= 0; k--) {
            int i = order[k];
            if (!loose[i]) {
                continue;
            }
            int late = Integer.MAX_VALUE;
            for (int c : consumers.get(i)) {
                late = Math.min(late, piece[c]);
            }
            boolean feedsOutput = model.node(i).getOutputList().stream().anyMatch(graphOutputs::contains);
            if (late == Integer.MAX_VALUE) {
                late = feedsOutput ? pieceUnit.size() - 1 : early[i];
            }
            late = Math.max(late, early[i]);
            int chosen = late;
            if (blockOf[i] != null) {
                for (int s = late; s >= early[i]; s--) {
                    if (blockOf(unitList.get(pieceUnit.get(s))).equals(blockOf[i])) {
                        chosen = s;
                        break;
                    }
                }
            }
            piece[i] = chosen;
        }

        // ---- partitions ----
        int pieces = pieceUnit.size();
        List<List<Integer>> nodesOf = new ArrayList<>();
        for (int s = 0; s < pieces; s++) {
            nodesOf.add(new ArrayList<>());
        }
        for (int i : order) {
            nodesOf.get(piece[i]).add(i);
        }
        Map<Integer, Integer> piecesPerUnit = new HashMap<>();
        pieceUnit.forEach(u -> piecesPerUnit.merge(u, 1, Integer::sum));
        Map<Integer, Integer> seen = new HashMap<>();
        List<Partition> out = new ArrayList<>();
        for (int s = 0; s < pieces; s++) {
            int u = pieceUnit.get(s);
            Unit unit = unitList.get(u);
            int nth = seen.merge(u, 1, Integer::sum);
            String label = piecesPerUnit.get(u) > 1 ? unit.path + "#" + nth : unit.path;
            if (label.isEmpty()) {
                label = "<root>";
            }
            Set<String> produced = new LinkedHashSet<>();
            Set<String> consumed = new LinkedHashSet<>();
            for (int i : nodesOf.get(s)) {
                NodeProto node = model.node(i);
                for (String in : OnnxModel.consumedValues(node)) {
                    if (!produced.contains(in)) {
                        consumed.add(in);
                    }
                }
                for (String o : node.getOutputList()) {
                    if (!o.isEmpty()) {
                        produced.add(o);
                    }
                }
            }
            List<String> inits = new ArrayList<>();
            List<String> inputs = new ArrayList<>();
            long bytes = 0;
            for (String c : consumed) {
                if (produced.contains(c)) {
                    continue;
                }
                if (model.isInitializer(c) && !producer.containsKey(c)) {
                    inits.add(c);
                    bytes += model.byteSize(c);
                } else {
                    inputs.add(c);
                }
            }
            List<String> outputs = new ArrayList<>();
            for (String p : produced) {
                boolean needed = graphOutputs.contains(p);
                Integer prod = producer.get(p);
                if (!needed && prod != null) {
                    for (int c : consumers.get(prod)) {
                        if (piece[c] != s && OnnxModel.consumedValues(model.node(c)).contains(p)) {
                            needed = true;
                            break;
                        }
                    }
                }
                if (needed) {
                    outputs.add(p);
                }
            }
            out.add(new Partition(s, label, blockOf(unit), unit.storage, plan.executionDevice(unit.storage),
                    plan.isOffloaded(unit.storage), nodesOf.get(s), inputs, outputs, inits, bytes));
        }
        return out;
    }

    private static String blockOf(Unit u) {
        return u.block;
    }

    private static void checkScopes(OnnxModuleTree tree, Map<String, Device> map) {
        List<String> unknown = new ArrayList<>();
        for (String k : map.keySet()) {
            if (tree.module(k) == null) {
                unknown.add(k);
            }
        }
        if (!unknown.isEmpty()) {
            List<String> examples = new ArrayList<>();
            for (Module c : tree.root().children().values()) {
                examples.add(c.name());
                c.children().values().stream().limit(3).forEach(g -> examples.add(g.name()));
                if (examples.size() > 6) {
                    break;
                }
            }
            throw new OnnxModelException.UnknownScope("the device map names scopes the graph lacks: " + unknown
                    + " (the graph's scopes look like " + examples + "; modules without ops in the export, "
                    + "such as Dropout, have no scope)");
        }
    }

    /** The outermost ancestor-or-self of {@code path} whose class is a preload class, or null. */
    private static String preloadAncestor(OnnxModuleTree tree, String path, Set<String> preloadClasses) {
        if (preloadClasses.isEmpty()) {
            return null;
        }
        String found = null;
        String p = path;
        while (true) {
            Module m = tree.module(p);
            if (m != null && preloadClasses.contains(m.className())) {
                found = p;
            }
            if (p.isEmpty()) {
                return found;
            }
            int dot = p.lastIndexOf('.');
            p = dot < 0 ? "" : p.substring(0, dot);
        }
    }

    /** In an offloaded block: every module owning tensors is a unit; a preload-class module is taken whole. */
    private static void collectHookedModules(Module m, String block, Device storage, Set<String> preloadClasses,
                                             Map<String, Unit> units) {
        for (Module c : m.children().values()) {
            if (preloadClasses.contains(c.className())) {
                units.put(c.name(), new Unit(c.name(), block, storage, true));
                continue;
            }
            if (c.ownsTensors()) {
                units.put(c.name(), new Unit(c.name(), block, storage, false));
            }
            collectHookedModules(c, block, storage, preloadClasses, units);
        }
    }

    private static boolean hasHookedUnitsBelow(String path, List<Unit> units) {
        String prefix = path.isEmpty() ? "" : path + ".";
        for (Unit u : units) {
            if (!u.path.equals(path) && u.path.startsWith(prefix)) {
                return true;
            }
        }
        return false;
    }

    private static Integer deepestCovering(String scope, Map<String, Integer> unitIndex) {
        String s = scope;
        while (true) {
            Integer u = unitIndex.get(s);
            if (u != null) {
                return u;
            }
            if (s.isEmpty()) {
                return null;
            }
            int dot = s.lastIndexOf('.');
            s = dot < 0 ? "" : s.substring(0, dot);
        }
    }

    /** Kahn's algorithm, preferring file order (which exporters already make topological). */
    static int[] topologicalOrder(OnnxModel model) {
        int n = model.nodes().size();
        Map<String, Integer> producer = new HashMap<>();
        for (int i = 0; i < n; i++) {
            for (String o : model.node(i).getOutputList()) {
                if (!o.isEmpty()) {
                    producer.put(o, i);
                }
            }
        }
        int[] indegree = new int[n];
        List<List<Integer>> succ = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            succ.add(new ArrayList<>());
        }
        for (int i = 0; i < n; i++) {
            for (String in : OnnxModel.consumedValues(model.node(i))) {
                Integer p = producer.get(in);
                if (p != null && p != i) {
                    succ.get(p).add(i);
                    indegree[i]++;
                }
            }
        }
        PriorityQueue<Integer> ready = new PriorityQueue<>();
        for (int i = 0; i < n; i++) {
            if (indegree[i] == 0) {
                ready.add(i);
            }
        }
        int[] order = new int[n];
        int k = 0;
        while (!ready.isEmpty()) {
            int i = ready.poll();
            order[k++] = i;
            for (int s : succ.get(i)) {
                if (--indegree[s] == 0) {
                    ready.add(s);
                }
            }
        }
        if (k != n) {
            throw new OnnxModelException("the graph has a cycle: " + (n - k) + " nodes never become ready");
        }
        return order;
    }

}
