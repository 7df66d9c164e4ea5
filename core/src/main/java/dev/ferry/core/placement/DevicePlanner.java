package dev.ferry.core.placement;

import dev.ferry.core.module.RoutedExperts;
import dev.ferry.core.module.RowLookup;
import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.Device;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Turns a module tree and per-device budgets into a device map: Accelerate's {@code infer_auto_device_map}
 * (with {@code get_balanced_memory} for the balanced strategies), in time linear in the number of modules.
 *
 * <h2>The fill</h2>
 * Devices are tried in order: accelerators by index, then {@code cpu}, then {@code disk} (unless the request
 * forbids it). The model is walked from the root in tree order; each block, together with the blocks holding
 * parameters tied to it, goes on the current device if it fits. If the block alone does not fit and can be
 * split, its children are tried instead; if it fits but its tied partners do not, the first partner that can be
 * split is split; otherwise the fill moves to the next device and never comes back.
 * <ul>
 *   <li>A block is never split when its class is a no-split class, when it has no children, or when it owns
 *       parameters or buffers itself (a Ferry device map names modules, not tensors; Accelerate would emit
 *       tensor-named keys there).</li>
 *   <li>On the main devices (the first accelerator with a budget, and the cpu) the fill keeps free room for the
 *       largest layer still to come, so that a block offloaded later can be brought there to run (Accelerate's
 *       {@code max_layer_size} reservation; Accelerate re-scans the remaining modules for it, Ferry reads a suffix
 *       maximum computed once).</li>
 *   <li>Blocks holding tied parameters land on one device: the block that comes first takes its partners along.</li>
 * </ul>
 * Every module is visited a bounded number of times (once per device it is tried on, and once more per tied
 * split), and each tied look-up walks up the tree: the plan is O(modules × (devices + depth)) where Accelerate's
 * is quadratic.
 *
 * <p>The planner holds no state; one instance can be shared.
 */
public final class DevicePlanner {

    private static final byte FREE = 0;
    private static final byte SPLIT = 1;
    private static final byte PLACED = 2;

    public DevicePlanner() {
    }

    /**
     * Plans {@code root} under {@code request}.
     *
     * @throws IllegalArgumentException when a block fits no device and disk offload is off, naming the block, its
     *                                  size and every budget
     */
    public DevicePlan plan(Module root, PlanRequest request) {
        IndexedTree t = IndexedTree.of(root, request.dtype(), request.specialDtypes());
        List<String> warnings = new ArrayList<>();
        // preload units are placed whole by the dispatcher, so the planner keeps them whole too
        boolean[] noSplit = t.classMask(request.atomicClasses());
        warnUnknownClasses(t, request.noSplitModuleClasses(), noSplit, warnings);
        PlannedApart apart = PlannedApart.of(t, noSplit, request.maxMemory());

        Map<Device, Long> budgets = switch (request.strategy()) {
            case SEQUENTIAL -> request.maxMemory();
            case AUTO, BALANCED -> balancedBudgets(t, noSplit, request.maxMemory(), false);
            case BALANCED_LOW_0 -> balancedBudgets(t, noSplit, request.maxMemory(), true);
        };
        return new Fill(t, noSplit, budgets, request, warnings, apart).run();
    }

    /**
     * Mixture-of-experts models that do not fit the accelerators: their routed experts ({@link RoutedExperts}) are
     * planned apart. The dense weights (attention, norms, routers, shared experts, head, tied embeddings) are filled
     * first, as if the experts weighed nothing, so they take the accelerators; then each layer's experts, whole and in
     * layer order, take the room left on the accelerators (keeping room there for the largest unit streamed: an expert, or
     * a dense block offloaded), then CPU memory, then disk. A routed expert is only fetched when selected, so experts
     * stream far fewer bytes per token than dense blocks: the dense weights are the ones worth keeping close.
     *
     * <p>Lookup tables are planned apart the same way, after the experts: an untied embedding that is a block of its
     * own ({@link RowLookup#streamsRows}, outside every no-split block) streams only the rows its ids name when
     * offloaded, so its bytes on an accelerator save almost nothing per token, while the same bytes given to a layer
     * save that layer's whole stream. Accelerate fills the embedding first; under an 8B model's 4 GiB budget that
     * 1 GB keeps two fp16 layers (four int8 ones) off the GPU.
     */
    static final class PlannedApart {
        final int[] holders;
        final long[] bytes;
        final long largestExpert;
        /** Holders from this index on are lookup tables, not experts. */
        final int lookupsFrom;

        private PlannedApart(int[] holders, long[] bytes, long largestExpert, int lookupsFrom) {
            this.holders = holders;
            this.bytes = bytes;
            this.largestExpert = largestExpert;
            this.lookupsFrom = lookupsFrom;
        }

        boolean isLookup(int h) {
            return h >= lookupsFrom;
        }

        /**
         * Takes the experts and lookup tables out of {@code t}'s sizes (restored by the fill's second phase);
         * {@code null} if none.
         */
        static PlannedApart of(IndexedTree t, boolean[] noSplit, Map<Device, Long> maxMemory) {
            List<Integer> found = new ArrayList<>();
            for (int i = 0; i < t.n; i++) {
                if (t.modules[i] instanceof RoutedExperts && t.size[i] > 0) {
                    found.add(i);
                }
            }
            int lookupsFrom = found.size();
            // lookups outside every whole block: the walk skips the insides of no-split blocks and of modules that
            // own tensors (placed whole), so a 405B tree costs a handful of checks, not one per module
            for (int i = 0; i < t.n; ) {
                if (t.size[i] > 0 && RowLookup.streamsRows(t.modules[i]) && untied(t, i)) {
                    found.add(i);
                    i = t.end[i];
                } else if (noSplit[i] || t.ownsTensors[i]) {
                    i = t.end[i];
                } else {
                    i++;
                }
            }
            long accelerators = 0;
            for (Map.Entry<Device, Long> e : maxMemory.entrySet()) {
                if (e.getKey().isAccelerator()) {
                    accelerators += e.getValue();
                }
            }
            if (found.isEmpty() || accelerators == 0 || t.size[0] <= accelerators) {
                return null; // no experts, nothing to keep close, or everything fits: the usual plan
            }
            int[] holders = found.stream().mapToInt(Integer::intValue).toArray();
            long[] bytes = new long[holders.length];
            long largest = 0;
            for (int h = 0; h < holders.length; h++) {
                int node = holders[h];
                bytes[h] = t.size[node];
                for (int c = node + 1; c < t.end[node]; c = t.end[c]) {
                    largest = Math.max(largest, t.size[c]);
                }
                for (int a = t.parent[node]; a >= 0; a = t.parent[a]) {
                    t.size[a] -= bytes[h];
                }
                for (int j = node; j < t.end[node]; j++) {
                    t.size[j] = 0;
                }
            }
            return new PlannedApart(holders, bytes, largest, lookupsFrom);
        }

        /** None of {@code node}'s tensors is tied to another module's. */
        private static boolean untied(IndexedTree t, int node) {
            for (int[] group : t.tiedOwnerGroups) {
                for (int owner : group) {
                    if (t.isWithin(owner, node)) {
                        return false;
                    }
                }
            }
            return true;
        }
    }

    /**
     * Accelerate's {@code get_balanced_memory}: the budgets of all accelerators but the last are lowered to
     * {@code total / n} plus a margin (1.25 × the larger of the first no-split block's size and the mean size of
     * the innermost modules holding tensors), so the model spreads evenly and the last accelerator absorbs the
     * rounding. With {@code lowZero}, the share is computed over {@code n - 1} accelerators and the first one keeps
     * only what the others cannot hold. Accelerators with a zero budget are not counted; with fewer than two the
     * budgets are returned unchanged. {@code cpu} and {@code disk} budgets are never changed.
     */
    public static Map<Device, Long> balancedMemory(Module root, PlanRequest request, boolean lowZero) {
        IndexedTree t = IndexedTree.of(root, request.dtype(), request.specialDtypes());
        return balancedBudgets(t, t.classMask(request.atomicClasses()), request.maxMemory(), lowZero);
    }

    static Map<Device, Long> balancedBudgets(IndexedTree t, boolean[] noSplit, Map<Device, Long> maxMemory,
                                             boolean lowZero) {
        List<Device> gpus = new ArrayList<>();
        for (Map.Entry<Device, Long> e : maxMemory.entrySet()) { // sorted: PlanRequest keeps device order
            if (e.getKey().isAccelerator() && e.getValue() > 0) {
                gpus.add(e.getKey());
            }
        }
        LinkedHashMap<Device, Long> out = new LinkedHashMap<>(maxMemory);
        if (gpus.size() < 2) {
            return out; // one accelerator: nothing to balance, and no low-zero on a single device
        }
        long total = t.size[0];
        long perGpu = total / (lowZero ? gpus.size() - 1 : gpus.size());

        // the first module (tree order) of each no-split class that holds tensors; the largest of those
        long noSplitBlock = 0;
        Set<String> seenClasses = new java.util.HashSet<>();
        for (int i = 1; i < t.n; i++) {
            if (noSplit[i] && t.size[i] > 0 && seenClasses.add(t.modules[i].className())) {
                noSplitBlock = Math.max(noSplitBlock, t.size[i]);
            }
        }
        // mean size of the innermost modules holding tensors (no child module holds any)
        boolean[] childHolds = new boolean[t.n];
        for (int i = t.n - 1; i > 0; i--) {
            if (t.size[i] > 0 || childHolds[i]) {
                childHolds[t.parent[i]] = true;
            }
        }
        long leafSum = 0;
        int leafCount = 0;
        for (int i = 1; i < t.n; i++) {
            if ((t.size[i] > 0 || childHolds[i]) && !childHolds[i]) {
                leafSum += t.size[i];
                leafCount++;
            }
        }
        long meanLeaves = (long) ((double) leafSum / Math.max(leafCount, 1));
        perGpu += (long) (1.25 * Math.max(noSplitBlock, meanLeaves));

        Device first = gpus.get(0);
        for (Device d : gpus.subList(0, gpus.size() - 1)) {
            if (!(lowZero && d.equals(first))) {
                out.put(d, Math.min(perGpu, out.get(d)));
            }
        }
        if (lowZero) {
            long others = 0;
            for (Device d : gpus.subList(1, gpus.size())) {
                others += out.get(d);
            }
            out.put(first, Math.min(Math.max(0, total - others), out.get(first)));
        }
        return out;
    }

    private static void warnUnknownClasses(IndexedTree t, Set<String> classes, boolean[] mask, List<String> warnings) {
        if (classes.isEmpty()) {
            return;
        }
        Set<String> found = new java.util.HashSet<>();
        for (int i = 0; i < t.n; i++) {
            if (mask[i]) {
                found.add(t.modules[i].className());
            }
        }
        for (String c : classes) {
            if (!found.contains(c)) {
                warnings.add("no-split class '" + c + "' matches no module of the model");
            }
        }
    }

    /** One run of the fill; arrays indexed by pre-order node. */
    private static final class Fill {
        final IndexedTree t;
        final boolean[] atomic;
        final PlanRequest request;
        final List<String> warnings;
        final List<Device> devices = new ArrayList<>();
        final long[] budget;
        final boolean[] bounded;
        final boolean[] main;
        final long[] used;
        final long[] reserved;
        final boolean[] left;
        final Map<Device, Long> budgets;
        final byte[] state;
        final int[] placedOn;
        final long[] suffixMaxLayer;
        final boolean[] tiedInside;
        final boolean[] noSplit;
        int[] partners = new int[4];
        int partnerCount;

        final PlannedApart apart;
        /** Per holder planned apart (with {@link #apart}), the device index it went to. */
        int[] apartOn;

        Fill(IndexedTree t, boolean[] noSplit, Map<Device, Long> budgets, PlanRequest request, List<String> warnings,
             PlannedApart apart) {
            this.t = t;
            this.apart = apart;
            this.noSplit = noSplit;
            this.request = request;
            this.warnings = warnings;
            this.budgets = budgets;
            atomic = noSplit.clone();
            for (int i = 0; i < t.n; i++) {
                atomic[i] |= !t.hasChildren(i) || t.ownsTensors[i];
            }
            for (Device d : budgets.keySet()) {
                if (!d.equals(Device.disk())) {
                    devices.add(d);
                }
            }
            if (request.allowDisk()) {
                devices.add(Device.disk());
            }
            int k = devices.size();
            budget = new long[k];
            bounded = new boolean[k];
            main = new boolean[k];
            used = new long[k];
            reserved = new long[k];
            left = new boolean[k];
            boolean mainAccelerator = false;
            for (int d = 0; d < k; d++) {
                Device dev = devices.get(d);
                Long b = budgets.get(dev);
                bounded[d] = b != null;
                budget[d] = b == null ? Long.MAX_VALUE : b;
                if (dev.isAccelerator() && !mainAccelerator && budget[d] > 0) {
                    main[d] = true;
                    mainAccelerator = true;
                }
                main[d] |= dev.equals(Device.cpu());
            }
            state = new byte[t.n];
            placedOn = new int[t.n];
            suffixMaxLayer = new long[t.n + 1];
            for (int i = t.n - 1; i >= 0; i--) {
                suffixMaxLayer[i] = Math.max(suffixMaxLayer[i + 1], atomic[i] ? t.size[i] : 0);
            }
            tiedInside = new boolean[t.n];
            for (int[] group : t.tiedOwnerGroups) {
                for (int owner : group) {
                    for (int a = owner; a >= 0 && !tiedInside[a]; a = t.parent[a]) {
                        tiedInside[a] = true;
                    }
                }
            }
        }

        DevicePlan run() {
            int dev = 0;
            int i = 0;
            while (i < t.n) {
                if (state[i] == PLACED) {
                    i = t.end[i];
                    continue;
                }
                if (state[i] == SPLIT) {
                    i++;
                    continue;
                }
                if (dev == devices.size()) {
                    throw cannotPlace(i, t.size[i]);
                }
                long reserve = main[dev] ? suffixMaxLayer[t.end[i]] : 0;
                long limit = bounded[dev] ? budget[dev] - reserve : Long.MAX_VALUE;
                partnerCount = 0;
                if (tiedInside[i]) {
                    findPartners(i);
                }
                long withTies = t.size[i];
                for (int p = 0; p < partnerCount; p++) {
                    withTies += t.size[partners[p]];
                }
                if (fits(used[dev], withTies, limit)) {
                    place(i, dev);
                    for (int p = 0; p < partnerCount; p++) {
                        place(partners[p], dev);
                    }
                    used[dev] += withTies;
                    i = t.end[i];
                    continue;
                }
                boolean aloneFits = fits(used[dev], t.size[i], limit);
                if (aloneFits && partnerCount > 0 && splitAPartner()) {
                    continue; // retry the block with smaller partners
                }
                if (!aloneFits && !atomic[i]) {
                    state[i] = SPLIT;
                    i++;
                    continue;
                }
                // the block (or it with its partners) fits nowhere here: on to the next device, never back
                if (main[dev]) {
                    reserved[dev] = Math.min(reserve, Math.max(0, budget[dev] - used[dev]));
                }
                left[dev] = true;
                if (dev + 1 == devices.size()) {
                    throw cannotPlace(i, withTies);
                }
                dev++;
            }
            if (apart != null) {
                placeApart();
            }
            return result();
        }

        /** The second phase of {@link PlannedApart}: each layer's experts, then the lookups, where room is left. */
        private void placeApart() {
            long denseStreamed = 0;
            for (int i = 0; i < t.n; i++) {
                if (state[i] == PLACED && !devices.get(placedOn[i]).isAccelerator()) {
                    denseStreamed = Math.max(denseStreamed, t.size[i]);
                }
            }
            long streamRoom = Math.max(denseStreamed, apart.largestExpert);
            apartOn = new int[apart.holders.length];
            int dev = 0;
            for (int h = 0; h < apart.holders.length; h++) {
                long size = apart.bytes[h];
                while (true) {
                    if (dev == devices.size()) {
                        String holder = t.describe(apart.holders[h]);
                        String what = apart.isLookup(h) ? "cannot place the lookup table " + holder
                                : "cannot place the experts of "
                                + holder.replace(" (", " (experts " + SizeStrings.format(size) + "; ");
                        throw new IllegalArgumentException(what + " on any device: budgets " + budgets
                                + (request.allowDisk() ? "; raise a budget"
                                : "; disk offload is off: allow it or raise a budget"));
                    }
                    boolean accelerator = devices.get(dev).isAccelerator();
                    long reserve = accelerator && main[dev] ? Math.max(streamRoom, reserved[dev]) : 0;
                    long limit = bounded[dev] ? budget[dev] - reserve : Long.MAX_VALUE;
                    if (fits(used[dev], size, limit)) {
                        used[dev] += size;
                        apartOn[h] = dev;
                        break;
                    }
                    if (main[dev] && accelerator) {
                        reserved[dev] = Math.min(reserve, Math.max(0, budget[dev] - used[dev]));
                        left[dev] = true;
                    }
                    dev++;
                }
            }
        }

        private static boolean fits(long used, long size, long limit) {
            return limit >= 0 && size <= limit - used;
        }

        private void place(int node, int dev) {
            state[node] = PLACED;
            placedOn[node] = dev;
        }

        /** The not-yet-placed blocks that hold a parameter tied to one inside {@code node}, each once. */
        private void findPartners(int node) {
            for (int[] group : t.tiedOwnerGroups) {
                boolean inside = false;
                boolean outside = false;
                for (int owner : group) {
                    if (t.isWithin(owner, node)) {
                        inside = true;
                    } else {
                        outside = true;
                    }
                }
                if (!inside || !outside) {
                    continue;
                }
                for (int owner : group) {
                    if (t.isWithin(owner, node)) {
                        continue;
                    }
                    int block = blockHolding(owner);
                    if (state[block] == PLACED) {
                        continue;
                    }
                    boolean dup = false;
                    for (int p = 0; p < partnerCount; p++) {
                        dup |= partners[p] == block;
                    }
                    if (!dup) {
                        if (partnerCount == partners.length) {
                            partners = java.util.Arrays.copyOf(partners, partnerCount * 2);
                        }
                        partners[partnerCount++] = block;
                    }
                }
            }
        }

        /** The highest module above (or at) {@code owner} that is not split: the block that will carry it. */
        private int blockHolding(int owner) {
            int block = owner;
            for (int a = t.parent[owner]; a >= 0; a = t.parent[a]) {
                if (state[a] != SPLIT) {
                    block = a;
                }
            }
            return block;
        }

        private boolean splitAPartner() {
            for (int p = 0; p < partnerCount; p++) {
                if (!atomic[partners[p]]) {
                    state[partners[p]] = SPLIT;
                    return true;
                }
            }
            return false;
        }

        private IllegalArgumentException cannotPlace(int node, long withTies) {
            if (devices.isEmpty()) {
                return new IllegalArgumentException("cannot place " + t.describe(node) + ": maxMemory names no device"
                        + " and disk offload is off; give budgets, e.g. {0: \"10GiB\", \"cpu\": \"30GiB\"}");
            }
            StringBuilder sb = new StringBuilder("cannot place ").append(t.describe(node));
            if (withTies != t.size[node]) {
                sb.append(" with the blocks tied to it (").append(SizeStrings.format(withTies)).append(" = ")
                        .append(withTies).append(" bytes together)");
            }
            if (noSplit[node]) {
                sb.append(", a no-split class,");
            } else if (atomic[node] && t.hasChildren(node)) {
                sb.append(", which owns tensors itself and is placed whole,");
            }
            sb.append(" on any device: budgets ");
            for (int d = 0; d < devices.size(); d++) {
                if (d > 0) {
                    sb.append(", ");
                }
                sb.append(devices.get(d)).append(' ')
                        .append(bounded[d] ? SizeStrings.format(budget[d]) : "unbounded")
                        .append(" (used ").append(SizeStrings.format(used[d]));
                if (reserved[d] > 0) {
                    sb.append(", ").append(SizeStrings.format(reserved[d]))
                            .append(" kept free for the largest layer still to place");
                }
                sb.append(')');
            }
            sb.append(request.allowDisk() ? "; raise a budget" : "; disk offload is off: allow it, raise a budget");
            sb.append(noSplit[node] ? ", drop the class from the no-split list" : "").append(" or load a smaller dtype");
            return new IllegalArgumentException(sb.toString());
        }

        private DevicePlan result() {
            if (apartOn != null) {
                for (int h = apart.lookupsFrom; h < apart.holders.length; h++) {
                    moveOut(apart.holders[h], apartOn[h]);
                }
            }
            Map<String, Device> map = new LinkedHashMap<>();
            int[] uniform = new int[t.n]; // device index, -1 mixed
            int[] keys = new int[t.n];
            for (int i = t.n - 1; i >= 0; i--) {
                if (state[i] == PLACED) {
                    uniform[i] = placedOn[i];
                    keys[i] = 1;
                } else if (state[i] == SPLIT) {
                    int u = -2;
                    int k = 0;
                    for (int c = i + 1; c < t.end[i]; c = t.end[c]) {
                        u = u == -2 ? uniform[c] : (u == uniform[c] ? u : -1);
                        k += keys[c];
                    }
                    uniform[i] = u;
                    keys[i] = k;
                }
            }
            emit(0, uniform, keys, map);
            if (apartOn != null) {
                map = withExperts(map);
            }

            LinkedHashMap<Device, Long> bytes = new LinkedHashMap<>();
            LinkedHashMap<Device, Long> kept = new LinkedHashMap<>();
            boolean[] usedDevice = new boolean[devices.size()];
            for (int i = 0; i < t.n; i++) {
                if (state[i] == PLACED && (t.size[i] > 0 || apartOn == null)) {
                    usedDevice[placedOn[i]] = true;
                }
            }
            if (apartOn != null) {
                for (int d : apartOn) {
                    usedDevice[d] = true;
                }
            }
            long offloadedBuffers = 0;
            for (int i = 0; i < t.n; i++) {
                if (state[i] == PLACED && devices.get(placedOn[i]).isOffloadStorage()) {
                    offloadedBuffers += t.bufferSize[i];
                }
            }
            for (int d = 0; d < devices.size(); d++) {
                if (usedDevice[d]) {
                    bytes.put(devices.get(d), used[d]);
                }
                if (left[d] && main[d] && reserved[d] > 0) {
                    kept.put(devices.get(d), reserved[d]);
                }
            }
            if (!request.offloadBuffers() && offloadedBuffers > 0) {
                boolean fitsSomewhere = false;
                boolean anyAccelerator = false;
                for (int d = 0; d < devices.size(); d++) {
                    if (devices.get(d).isAccelerator()) {
                        anyAccelerator = true;
                        fitsSomewhere |= budget[d] - used[d] - reserved[d] >= offloadedBuffers;
                    }
                }
                if (anyAccelerator && !fitsSomewhere) {
                    warnings.add("buffers of the blocks stored on cpu / disk take " + SizeStrings.format(offloadedBuffers)
                            + " (" + offloadedBuffers + " bytes) and stay on the execution device because offloadBuffers"
                            + " is false, but no accelerator has that much room left; set offloadBuffers to avoid"
                            + " running out of memory");
                }
            }
            LinkedHashMap<Device, Long> budgetView = new LinkedHashMap<>();
            for (int d = 0; d < devices.size(); d++) {
                if (bounded[d]) {
                    budgetView.put(devices.get(d), budget[d]);
                }
            }
            long total = t.size[0] + (apart == null ? 0 : java.util.Arrays.stream(apart.bytes).sum());
            return new DevicePlan(new DeviceMap(map), bytes, budgetView, kept, total, warnings);
        }

        /**
         * Places lookup table {@code node} on device {@code dev}: the block the dense fill placed it in (at size 0) is
         * split down to it, its other parts staying where that block went, so the map names the table apart without
         * nesting keys (nothing on the way down is a whole block: {@link PlannedApart#of} takes no lookup inside one).
         */
        private void moveOut(int node, int dev) {
            int placed = node;
            while (state[placed] != PLACED) {
                placed = t.parent[placed];
            }
            if (placedOn[placed] == dev) {
                return;
            }
            int home = placedOn[placed];
            for (int a = node; a != placed; a = t.parent[a]) {
                int up = t.parent[a];
                state[up] = SPLIT;
                for (int c = up + 1; c < t.end[up]; c = t.end[c]) {
                    if (state[c] != SPLIT && c != a) {
                        place(c, home);
                    }
                }
            }
            place(node, dev);
        }

        /**
         * The map with each experts holder's key added where its experts went elsewhere than the block holding it (a
         * key nested in a preload unit's, as {@code PreloadRule} allows), keys in tree order.
         */
        private Map<String, Device> withExperts(Map<String, Device> dense) {
            if (apart.lookupsFrom == 0) {
                return dense; // lookups only: moveOut named them already
            }
            java.util.TreeMap<Integer, String> order = new java.util.TreeMap<>();
            Map<String, Integer> index = new java.util.HashMap<>();
            for (int i = 0; i < t.n; i++) {
                index.put(t.name(i), i);
            }
            Map<String, Device> all = new LinkedHashMap<>(dense);
            DeviceMap denseMap = new DeviceMap(dense);
            for (int h = 0; h < apart.lookupsFrom; h++) {
                String name = t.name(apart.holders[h]);
                Device to = devices.get(apartOn[h]);
                if (!to.equals(denseMap.deviceOf(name))) {
                    all.put(name, to);
                }
            }
            all.keySet().forEach(k -> order.put(index.get(k), k));
            LinkedHashMap<String, Device> out = new LinkedHashMap<>();
            order.values().forEach(k -> out.put(k, all.get(k)));
            return out;
        }

        /** Accelerate's clean_device_map on the cut: a split module whose keys (two or more) share a device is one key. */
        private void emit(int i, int[] uniform, int[] keys, Map<String, Device> map) {
            if (state[i] == PLACED || (uniform[i] >= 0 && keys[i] > 1)) {
                map.put(t.name(i), devices.get(uniform[i]));
                return;
            }
            for (int c = i + 1; c < t.end[i]; c = t.end[c]) {
                emit(c, uniform, keys, map);
            }
        }
    }
}
