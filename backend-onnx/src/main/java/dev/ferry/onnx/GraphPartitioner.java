package dev.ferry.onnx;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.DispatchPlan.Unit;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;

/**
 * Cuts a graph into {@link Partition}s by the core's dispatch plan ({@link Dispatcher#plan}), so the ONNX
 * backend carries out exactly the hooks the PyTorch backend attaches, and no rule of the plan (blocks,
 * offloading, execution devices, the preload rule) is decided here.
 *
 * <p><b>Units.</b> Read off the plan: a resident mapped block (a hook that places its submodules and does not
 * offload) is one unit, placed on its device once. Inside an offloaded block, each module carrying an offload
 * hook is a unit of its own, loading just its weights for its own ops; one whose hook places its submodules
 * is a preload unit, taken whole. An offloaded block's other ops (attention arithmetic, residual additions)
 * belong to no unit: they stay with the block's units where the dataflow allows. A preload-class scope (the
 * plan's preload units and the modules it reports below them) is never cut.
 *
 * <p><b>Dataflow.</b> Partitions form a chain: each node gets a partition index that never decreases along an
 * edge, so the partition graph is acyclic by construction. Nodes of units are placed in topological order
 * into the latest piece of their unit that comes after all their producers, opening a new piece when none
 * does (a unit whose dataflow interleaves with another's is cut; a preload-class scope never is). Nodes
 * outside every unit (the causal mask of {@code LlamaModel}, shape arithmetic) go to the earliest partition
 * that consumes them, or, for an offloaded block's own loose ops, to the latest partition of that block the
 * dataflow allows.
 *
 * <p><b>Quantized patterns.</b> A dynamically quantized export (onnxruntime's {@code quantize_dynamic}) computes each
 * linear layer as {@code DynamicQuantizeLinear} of the activation, {@code MatMulInteger}, and a rescale
 * ({@code Cast}, {@code Mul} by the two scales), and names the {@code DynamicQuantizeLinear} after the activation,
 * so it falls into the module that produced it (the previous block's LayerNorm). At ORT's default optimisation the
 * whole graph fuses each pattern into one kernel ({@code DynamicQuantizeMatMul}, {@code MatMulIntegerToFloat}) whose
 * results differ from the unfused ops, so a cut through a pattern would make a split run differ from the whole one.
 * Each {@code DynamicQuantizeLinear} therefore goes with its consumers, and units that share one (query, key and
 * value of an offloaded layer) become one unit: every pattern stays inside one partition.
 */
public final class GraphPartitioner {

    private GraphPartitioner() {
    }

    /**
     * Partitions the graph of {@code tree} by {@code plan}, the core's dispatch plan of the same tree: one
     * partition per unit that carries weights (more pieces when the dataflow interleaves), never cutting a unit
     * the preload rule makes atomic.
     *
     * @throws OnnxModelException.InvalidPlan when the dataflow would cut a preload-class scope, or the plan's
     *                                        units cover no op
     */
    public static List<Partition> partition(OnnxModuleTree tree, DispatchPlan plan) {
        OnnxModel model = tree.model();
        DeviceMap blocks = plan.deviceMap(); // resolved: keys never nest

        // ---- units and never-cut scopes, as the plan has them ----
        List<Unit> unitList = plan.weightUnits();
        Map<String, String> preloadScopeOf = new HashMap<>();
        for (Unit u : plan.units()) {
            if (u.atomic() && u.block() != null) {
                tree.module(u.path()).visit(m -> preloadScopeOf.putIfAbsent(m.name(), u.path()));
            }
        }

        // ---- node → unit (deepest unit path covering its scope), node → block, node → never-cut scope ----
        int n = model.nodes().size();
        int[] order = topologicalOrder(model);
        Map<String, Integer> unitIndex = new HashMap<>();
        for (int i = 0; i < unitList.size(); i++) {
            unitIndex.put(unitList.get(i).path(), i);
        }
        int[] unitOf = new int[n];
        String[] blockOf = new String[n];
        String[] wholeOf = new String[n];
        for (int i = 0; i < n; i++) {
            String scope = tree.scopeOf(i);
            Integer u = deepestCovering(scope, unitIndex);
            // a Constant node belongs to no unit: it goes with its first consumer, and is copied into every other
            // partition that reads it, so that no constant (LayerNorm's epsilon, a scale) crosses a cut as an
            // input, where ORT could no longer fuse the ops around it
            unitOf[i] = u == null || isConstant(model.node(i)) ? -1 : u;
            blockOf[i] = blocks.keyOf(scope);
            wholeOf[i] = preloadScopeOf.get(scope);
        }

        // ---- pass 1: units' nodes into pieces; loose nodes' earliest piece ----
        List<Integer> pieceUnit = new ArrayList<>();
        Map<Integer, Integer> lastPieceOfUnit = new HashMap<>();
        int[] piece = new int[n];
        Map<String, Integer> pieceOfWhole = new HashMap<>();
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
        String[] labelOf = quantizedPatternsWhole(model, consumers, unitOf, blockOf, wholeOf, unitList);

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
                piece[i] = pieceUnit.size();
                pieceUnit.add(unitOf[i]);
                lastPieceOfUnit.put(unitOf[i], piece[i]);
            }
            if (wholeOf[i] != null && pieceOfWhole.computeIfAbsent(wholeOf[i], w -> piece[i]) != piece[i]) {
                throw new OnnxModelException.InvalidPlan("'" + wholeOf[i] + "' is a preloaded unit but its ops "
                        + "interleave with other blocks' (node " + model.node(i).getName() + " needs a value "
                        + "computed after the unit started): it cannot run as one partition");
            }
        }
        if (pieceUnit.isEmpty()) {
            throw new OnnxModelException.InvalidPlan("the device map " + plan.deviceMap().entries().keySet()
                    + " covers no op of the graph");
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
                    if (blockOf[i].equals(unitList.get(pieceUnit.get(s)).block())) {
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
        // constants read by a partition other than their own: copied in (first, so the order stays topological)
        List<Set<Integer>> copiesOf = new ArrayList<>();
        for (int s = 0; s < pieces; s++) {
            copiesOf.add(new LinkedHashSet<>());
        }
        for (int i : order) {
            if (!isConstant(model.node(i))) {
                continue;
            }
            for (int c : consumers.get(i)) {
                if (piece[c] != piece[i]) {
                    copiesOf.get(piece[c]).add(i);
                }
            }
        }
        Map<Integer, Integer> piecesPerUnit = new HashMap<>();
        pieceUnit.forEach(u -> piecesPerUnit.merge(u, 1, Integer::sum));
        Map<Integer, Integer> seen = new HashMap<>();
        List<Partition> out = new ArrayList<>();
        for (int s = 0; s < pieces; s++) {
            int u = pieceUnit.get(s);
            Unit unit = unitList.get(u);
            int nth = seen.merge(u, 1, Integer::sum);
            String path = labelOf[u] != null ? labelOf[u] : unit.path();
            String label = piecesPerUnit.get(u) > 1 ? path + "#" + nth : path;
            if (label.isEmpty()) {
                label = "<root>";
            }
            List<Integer> nodes = new ArrayList<>(copiesOf.get(s));
            nodes.addAll(nodesOf.get(s));
            Set<String> produced = new LinkedHashSet<>();
            Set<String> consumed = new LinkedHashSet<>();
            for (int i : nodes) {
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
                        if (piece[c] != s && !copiesOf.get(piece[c]).contains(prod)
                                && OnnxModel.consumedValues(model.node(c)).contains(p)) {
                            needed = true;
                            break;
                        }
                    }
                }
                if (needed) {
                    outputs.add(p);
                }
            }
            out.add(new Partition(s, label, unit.block(), unit.storage(), unit.executionDevice(), unit.offloaded(),
                    nodes,
                    inputs, outputs, inits, bytes));
        }
        return out;
    }

    /**
     * Moves each {@code DynamicQuantizeLinear} to the unit of its consumers and merges the units that share one
     * (when they lie in one block), rewriting {@code unitOf}, {@code blockOf} and {@code wholeOf} in place.
     *
     * @return per unit index, the label of a merged unit ({@code parent.{query,key,value}}), else null
     */
    static String[] quantizedPatternsWhole(OnnxModel model, List<List<Integer>> consumers,
                                           int[] unitOf, String[] blockOf, String[] wholeOf, List<Unit> units) {
        int[] parent = new int[units.size()];
        for (int u = 0; u < parent.length; u++) {
            parent[u] = u;
        }
        Map<Integer, Integer> moved = new HashMap<>(); // DynamicQuantizeLinear node -> a consumer node
        for (int i = 0; i < unitOf.length; i++) {
            if (!model.node(i).getOpType().equals("DynamicQuantizeLinear")) {
                continue;
            }
            Set<Integer> consumerUnits = new LinkedHashSet<>();
            Set<String> consumerBlocks = new HashSet<>();
            int witness = -1;
            for (int c : consumers.get(i)) {
                if (unitOf[c] >= 0) {
                    consumerUnits.add(unitOf[c]);
                    consumerBlocks.add(String.valueOf(blockOf[c]));
                    witness = c;
                }
            }
            if (consumerUnits.isEmpty() || consumerBlocks.size() != 1) {
                continue; // loose consumers follow the dataflow already; across blocks no merge is allowed
            }
            int first = find(parent, consumerUnits.iterator().next());
            for (int u : consumerUnits) {
                parent[find(parent, u)] = first;
            }
            moved.put(i, witness);
        }
        for (Map.Entry<Integer, Integer> e : moved.entrySet()) {
            int c = e.getValue();
            unitOf[e.getKey()] = unitOf[c];
            blockOf[e.getKey()] = blockOf[c];
            wholeOf[e.getKey()] = wholeOf[c];
        }
        Map<Integer, List<String>> members = new HashMap<>();
        for (int u = 0; u < parent.length; u++) {
            members.computeIfAbsent(find(parent, u), r -> new ArrayList<>()).add(units.get(u).path());
        }
        for (int i = 0; i < unitOf.length; i++) {
            if (unitOf[i] >= 0) {
                unitOf[i] = find(parent, unitOf[i]);
            }
        }
        String[] labels = new String[units.size()];
        members.forEach((root, paths) -> {
            if (paths.size() > 1) {
                String common = paths.get(0);
                for (String p : paths) {
                    while (!(p.equals(common) || p.startsWith(common + ".") || common.isEmpty())) {
                        int dot = common.lastIndexOf('.');
                        common = dot < 0 ? "" : common.substring(0, dot);
                    }
                }
                int cut = common.isEmpty() ? 0 : common.length() + 1;
                List<String> tails = paths.stream().map(p -> p.substring(Math.min(cut, p.length()))).toList();
                labels[root] = (common.isEmpty() ? "" : common + ".") + "{" + String.join(",", tails) + "}";
            }
        });
        return labels;
    }

    private static boolean isConstant(NodeProto node) {
        return node.getOpType().equals("Constant") && node.getInputCount() == 0;
    }

    private static int find(int[] parent, int u) {
        while (parent[u] != u) {
            parent[u] = parent[parent[u]];
            u = parent[u];
        }
        return u;
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
