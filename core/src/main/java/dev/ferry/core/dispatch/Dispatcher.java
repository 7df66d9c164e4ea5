package dev.ferry.core.dispatch;

import dev.ferry.core.dispatch.DispatchReport.Entry;
import dev.ferry.core.dispatch.DispatchReport.HookSpec;
import dev.ferry.core.dispatch.DispatchReport.Reason;
import dev.ferry.core.hook.AlignDevicesHook;
import dev.ferry.core.hook.CloseOnDetach;
import dev.ferry.core.hook.Hooks;
import dev.ferry.core.hook.Prefetcher;
import dev.ferry.core.hook.TiedCopiesHook;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.RowLookup;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.weights.HostMemoryStore;
import dev.ferry.core.weights.WeightsStore;
import jakarta.inject.Inject;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The unified attach algorithm: turns a device map and a preload rule into hooks on a module tree, the way
 * {@code design.md} states it. {@link #plan} computes which module gets which hook without touching any
 * device; {@link #dispatch} attaches them (all or none).
 */
public final class Dispatcher {

    private static final Logger LOG = LoggerFactory.getLogger(Dispatcher.class);

    private final TensorBackend backend;

    @Inject
    public Dispatcher(TensorBackend backend) {
        this.backend = backend;
    }

    /**
     * Plans the dispatch of {@code root} under {@code map}: resolves the map once and applies the preload rule
     * once, giving the units every backend carries out; reads no weights and needs no device.
     */
    public static DispatchPlan plan(Module root, DeviceMap map, PreloadRule preload) {
        return new Walk(root, map, preload).run();
    }

    /**
     * Attaches the planned hooks. Offloaded tensors are read from {@code options.offloadStore()}; those only
     * materialised in the model are first copied to host memory. If anything fails, every hook attached so
     * far is removed and the model is as it was.
     *
     * <p>The dispatched model is safe to call from several threads: all its hooks share one forward lock, which
     * a call holds for its whole forward (see {@link AlignDevicesHook}), so calls run one at a time, in arrival
     * order. State a call brings along (a KV cache, its inputs and outputs) stays the caller's.
     */
    public DispatchReport dispatch(Module root, DispatchOptions options) {
        return dispatch(root, plan(root, options.deviceMap(), options.preload()), options);
    }

    /**
     * Carries out {@code plan} (made by {@link #plan} for this {@code root} under {@code options}' map and preload
     * rule): one hook per unit. {@code options.deviceMap()} and {@code options.preload()} are not read again.
     */
    public DispatchReport dispatch(Module root, DispatchPlan plan, DispatchOptions options) {
        DispatchReport report = plan.report();
        List<String> alreadyHooked = root.modules().stream().filter(m -> m.hook() != null).map(Module::name)
                .toList();
        if (!alreadyHooked.isEmpty()) {
            throw new IllegalStateException("model is already dispatched (hooks on " + alreadyHooked
                    + "); remove them first with Dispatcher.remove");
        }
        for (Entry e : report.modules()) {
            Device d = e.executionDevice();
            if (d != null && !backend.isAvailable(d)) {
                throw new IllegalArgumentException("module '" + e.name() + "' would execute on " + d
                        + ", which backend " + backend.name() + " does not have on this machine");
            }
        }
        Set<TensorSlot> sharedResident = residentTiedTensors(root, report);
        Map<String, List<TensorSlot>> tiedCopies = tiedCopies(root, report);
        HostMemoryStore host = new HostMemoryStore(backend.pageLocking(report.mainDevice()));
        WeightsStore store;
        try {
            store = offloadStore(root, plan, options, sharedResident, host);
        } catch (RuntimeException ex) {
            host.close();
            throw ex;
        }
        Prefetcher<Map<TensorSlot, Tensor>> prefetcher = plan.streams() && options.prefetchBlocks() > 0
                ? AlignDevicesHook.blockPrefetcher(options.prefetchBlocks()) : null;
        // one lock for the whole model: a call holds it from the first hook it meets to that hook's postForward
        ReentrantLock forwardLock = new ReentrantLock(true);
        List<Module> attached = new ArrayList<>();
        try {
            for (DispatchPlan.Unit u : plan.units()) {
                Module m = root.find(u.path());
                HookSpec h = u.hook();
                // tied tensors this hook leaves alone: for an offload hook, those kept resident by another module;
                // for any hook, those whose copy a TiedCopiesHook stands in on this module's device
                Set<TensorSlot> shared = Collections.newSetFromMap(new IdentityHashMap<>());
                if (h.offload()) {
                    shared.addAll(sharedResident);
                }
                shared.addAll(tiedCopies.getOrDefault(u.path(), List.of()));
                String prefix = u.path().isEmpty() ? "" : u.path() + ".";
                Set<String> apart = new java.util.HashSet<>();
                u.apart().forEach(a -> apart.add(a.substring(prefix.length())));
                Hooks.add(m, new AlignDevicesHook(new AlignDevicesHook.Config(h.executionDevice(), h.offload(),
                        h.ioSameDevice(), h.placeSubmodules(), options.offloadBuffers(), options.skipKeys(),
                        h.offload() ? store : null, h.offload() ? backend : null, h.offload() ? prefetcher : null,
                        shared, apart, u.routed(), options.streamCounter(),
                        u.rowLookup() ? ((RowLookup) m).table() : null), forwardLock), true);
                attached.add(m);
            }
            // after the home hooks placed them: each other execution device gets its own copy of a tied tensor
            for (Map.Entry<String, List<TensorSlot>> t : tiedCopies.entrySet()) {
                Module m = root.find(t.getKey());
                Device exec = report.entry(t.getKey()).executionDevice();
                Hooks.add(m, new TiedCopiesHook(exec, t.getValue()), true);
                attached.add(m);
                LOG.warn("tied tensors of '{}' are kept resident on another device; '{}' executes on {} and gets its "
                        + "own copy of {} tensor(s) (as Accelerate does)", t.getKey(), t.getKey(), exec,
                        t.getValue().size());
            }
            if (host.totalBytes() > 0) {
                Hooks.add(root, new CloseOnDetach(host), true); // frees (and unlocks) the host copies on removal
            }
        } catch (RuntimeException ex) {
            Collections.reverse(attached);
            for (Module m : attached) {
                Hooks.remove(m, false);
            }
            host.close(); // after the hooks reloaded what they had offloaded from it
            if (prefetcher != null) {
                prefetcher.close();
            }
            throw ex;
        }
        if (prefetcher != null) {
            prefetcher.start();
        }
        LOG.info("dispatched {} modules: {} hooked, main device {}", report.modules().size(), report.hookedCount(),
                report.mainDevice());
        return report;
    }

    /**
     * Map entries (the modules the device map names) that execute on another device than the home of a tied tensor
     * they hold, with those tensors: each gets a {@link TiedCopiesHook}. The home is the first module of the group,
     * in the tree's order, that keeps the tensor resident.
     */
    private static Map<String, List<TensorSlot>> tiedCopies(Module root, DispatchReport report) {
        Map<String, List<TensorSlot>> out = new java.util.LinkedHashMap<>();
        for (List<String> group : root.tiedTensorGroups()) {
            Device home = null;
            for (String name : group) {
                Entry e = report.entry(owner(name));
                if (e.storage() != null && e.storage().equals(e.executionDevice())) {
                    home = e.executionDevice();
                    break;
                }
            }
            if (home == null) {
                continue;
            }
            for (String name : group) {
                Entry e = report.entry(owner(name));
                if (e.executionDevice() != null && !e.executionDevice().equals(home)) {
                    String key = report.deviceMap().keyOf(name);
                    TensorSlot slot = root.find(owner(name)).tensor(name.substring(name.lastIndexOf('.') + 1));
                    List<TensorSlot> slots = out.computeIfAbsent(key, k -> new ArrayList<>());
                    if (slots.stream().noneMatch(x -> x == slot)) {
                        slots.add(slot);
                    }
                }
            }
        }
        return out;
    }

    private static String owner(String tensorName) {
        int dot = tensorName.lastIndexOf('.');
        return dot < 0 ? "" : tensorName.substring(0, dot);
    }

    /** Tied tensors that one of their modules keeps resident: its offloaded partners use it in place. */
    private static Set<TensorSlot> residentTiedTensors(Module root, DispatchReport report) {
        Set<TensorSlot> out = Collections.newSetFromMap(new IdentityHashMap<>());
        for (List<String> group : root.tiedTensorGroups()) {
            for (String name : group) {
                int dot = name.lastIndexOf('.');
                String owner = dot < 0 ? "" : name.substring(0, dot);
                Entry e = report.entry(owner);
                if (e.storage() != null && e.storage().equals(e.executionDevice())) {
                    out.add(root.find(owner).tensor(name.substring(dot + 1)));
                }
            }
        }
        return out;
    }

    /** Removes every hook of the tree, putting tensors back where they were before dispatch. */
    public static void remove(Module root) {
        Hooks.remove(root, true);
    }

    private static WeightsStore offloadStore(Module root, DispatchPlan plan, DispatchOptions options,
                                             Set<TensorSlot> sharedResident, HostMemoryStore host) {
        List<List<String>> tied = root.tiedTensorGroups();
        List<WeightsStore> stores = new ArrayList<>();
        if (options.offloadStore() != null) {
            stores.add(options.offloadStore());
        }
        DispatchStore given = new DispatchStore(stores, tied);
        List<String> missing = new ArrayList<>();
        for (DispatchPlan.Unit u : plan.units()) {
            if (!u.offloaded()) {
                continue;
            }
            Module m = root.find(u.path());
            unitTensors(m, u).forEach((full, slot) -> {
                boolean streamed = (slot.isParameter() || options.offloadBuffers()) && !sharedResident.contains(slot);
                if (!streamed || given.contains(full)) {
                    return;
                }
                if (slot.isMaterialised()) {
                    host.put(full, slot.spec(), slot.value().toBytes());
                } else {
                    missing.add(full);
                }
            });
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("offloaded tensors are neither loaded in the model nor in the offload "
                    + "store: " + (missing.size() > 8 ? missing.subList(0, 8) + " ..." : missing));
        }
        stores.add(host);
        return new DispatchStore(stores, tied);
    }

    /** One planning pass over the tree. */
    private static final class Walk {
        private final Module root;
        private final DeviceMap map;
        private final DeviceMap resolved;
        private final PreloadRule preload;
        private final Device main;
        private final Map<Module, HookSpec> hooks = new IdentityHashMap<>();
        private final Map<Module, Reason> reasons = new IdentityHashMap<>();
        private final Set<Module> withTensors = Collections.newSetFromMap(new IdentityHashMap<>());
        /** Modules whose parent holds routed experts. */
        private final Set<Module> experts = Collections.newSetFromMap(new IdentityHashMap<>());
        /** Experts stored away from their execution device: units fetched when routed. */
        private final Set<Module> routed = Collections.newSetFromMap(new IdentityHashMap<>());
        /** Per unit, the subtrees inside it that are units of their own (full paths). */
        private final Map<Module, List<String>> apart = new IdentityHashMap<>();
        private final Set<String> apartPaths = new java.util.HashSet<>();
        /** Per key of the resolved map, the keys nested right below it (only experts mapped apart nest). */
        private final Map<String, List<String>> nestedKeys = new java.util.HashMap<>();

        Walk(Module root, DeviceMap map, PreloadRule preload) {
            this.root = root;
            this.map = map;
            this.preload = preload;
            this.main = map.mainDevice();
            markTensorOwners(root);
            root.visit(m -> {
                if (PreloadRule.holdsRoutedExperts(m)) {
                    experts.addAll(m.children().values());
                }
            });
            this.resolved = keepUnitsWhole(map.resolve(root));
            for (String k : resolved.entries().keySet()) {
                if (!k.isEmpty()) {
                    int dot = k.lastIndexOf('.');
                    String above = resolved.keyOf(dot < 0 ? "" : k.substring(0, dot));
                    if (above != null) {
                        nestedKeys.computeIfAbsent(above, x -> new ArrayList<>()).add(k);
                    }
                }
            }
        }

        private boolean markTensorOwners(Module m) {
            boolean any = m.ownsTensors();
            for (Module c : m.children().values()) {
                any |= markTensorOwners(c);
            }
            if (any) {
                withTensors.add(m);
            }
            return any;
        }

        DispatchPlan run() {
            checkTiedTensors();
            walk(root);
            List<Entry> entries = new ArrayList<>();
            describe(root, null, entries);
            List<DispatchPlan.Unit> units = new ArrayList<>();
            for (Entry e : entries) {
                if (!e.hooked()) {
                    continue;
                }
                Module m = root.find(e.name());
                HookSpec h = e.hook();
                List<String> away = apart.getOrDefault(m, List.of());
                List<String> members = new ArrayList<>();
                if (h.placeSubmodules()) {
                    collectMembers(m, away, members);
                } else {
                    members.add(m.name());
                }
                String block = resolved.keyOf(e.name());
                units.add(new DispatchPlan.Unit(e.name(), block, e.storage(), h.executionDevice(), h.offload(),
                        preload.isUnit(m) || routed.contains(m), members, e.reason(), h, away, routed.contains(m),
                        h.offload() && streamsRows(m)));
            }
            DispatchReport report = new DispatchReport(main, resolved, entries, memory(units));
            return new DispatchPlan(main, resolved, units, report, List.of());
        }

        /**
         * Whether an offloaded unit streams the rows its ids name, not its table: a {@link RowLookup} that can
         * ({@link RowLookup#streamsRows}) and whose table no other module shares (a head tied to it reads it whole).
         */
        private boolean streamsRows(Module m) {
            if (!RowLookup.streamsRows(m)) {
                return false;
            }
            String table = ((RowLookup) m).table();
            String name = m.name().isEmpty() ? table : m.name() + "." + table;
            return root.tiedTensorGroups().stream().noneMatch(g -> g.contains(name));
        }

        private void collectMembers(Module m, List<String> away, List<String> out) {
            if (away.contains(m.name())) {
                return;
            }
            out.add(m.name());
            for (Module c : m.children().values()) {
                collectMembers(c, away, out);
            }
        }

        /**
         * Bytes kept resident per device, bytes streamed per forward per storage, the largest unit streamed, and the
         * routed experts.
         */
        private DispatchReport.Memory memory(List<DispatchPlan.Unit> units) {
            Map<Device, Long> resident = new java.util.TreeMap<>();
            Map<Device, Long> offloaded = new java.util.TreeMap<>();
            root.namedTensors().forEach((name, slot) -> {
                Device storage = resolved.deviceOf(name);
                (map.isOffloaded(storage) ? offloaded : resident).merge(storage, slot.byteSize(), Long::sum);
            });
            String largest = null;
            long largestBytes = 0;
            Map<String, long[]> perLayer = new java.util.LinkedHashMap<>(); // holder -> {routed count, max bytes}
            long routedBytes = 0;
            long lookupBytes = 0;
            for (DispatchPlan.Unit u : units) {
                if (!u.offloaded()) {
                    continue;
                }
                long bytes = 0;
                for (TensorSlot slot : unitTensors(root.find(u.path()), u).values()) {
                    bytes += slot.byteSize();
                }
                if (u.rowLookup()) {
                    lookupBytes += bytes; // streamed by rows: never a unit streamed at once
                    continue;
                }
                if (bytes > largestBytes || bytes == largestBytes && largest != null && u.path().compareTo(largest) < 0) {
                    largestBytes = bytes;
                    largest = u.path();
                }
                if (u.routed()) {
                    routedBytes += bytes;
                    long[] layer = perLayer.computeIfAbsent(parent(u.path()), x -> new long[2]);
                    layer[0]++;
                    layer[1] = Math.max(layer[1], bytes);
                }
            }
            DispatchReport.Routed routedSummary = null;
            if (!perLayer.isEmpty()) {
                long perToken = 0;
                for (Map.Entry<String, long[]> e : perLayer.entrySet()) {
                    int k = ((dev.ferry.core.module.RoutedExperts) root.find(e.getKey())).expertsPerToken();
                    perToken += Math.min(k, e.getValue()[0]) * e.getValue()[1];
                }
                int count = perLayer.values().stream().mapToInt(v -> (int) v[0]).sum();
                routedSummary = new DispatchReport.Routed(count, perLayer.size(), routedBytes, perToken);
            }
            return new DispatchReport.Memory(resident, offloaded, largest, largestBytes, routedSummary, lookupBytes);
        }

        private static String parent(String path) {
            int dot = path.lastIndexOf('.');
            return dot < 0 ? "" : path.substring(0, dot);
        }

        private Device executionDevice(Device storage) {
            return map.executionDevice(storage); // the main device follows the map as the user wrote it
        }

        private boolean isKey(Module m) {
            return resolved.entries().containsKey(m.name());
        }

        private void walk(Module m) {
            Device storage = resolved.entries().get(m.name());
            if (storage != null) {
                placeKey(m, storage, m == root);
                return; // keys nest only where experts are mapped apart, and placeKey handles those
            }
            if (m == root) {
                assign(m, new HookSpec(main, false, false, true), Reason.ROOT);
            }
            for (Module c : m.children().values()) {
                walk(c);
            }
        }

        /** A key of the map: its hook, the hooks below it, then the keys nested in it (experts mapped apart). */
        private void placeKey(Module m, Device storage, boolean ioSameDevice) {
            Device exec = executionDevice(storage);
            List<String> nested = nestedKeys.getOrDefault(m.name(), List.of());
            if (!nested.isEmpty()) {
                apart.put(m, new ArrayList<>(nested));
            }
            if (exec.equals(storage)) {
                assign(m, new HookSpec(exec, false, true, ioSameDevice), Reason.IN_DEVICE_MAP);
            } else {
                attachOffload(m, exec);
                HookSpec own = hooks.get(m);
                if (own == null) {
                    assign(m, new HookSpec(exec, false, false, ioSameDevice), Reason.IN_DEVICE_MAP);
                } else {
                    if (ioSameDevice && !own.ioSameDevice() && !routed.contains(m)) {
                        hooks.put(m, new HookSpec(own.executionDevice(), own.offload(), own.placeSubmodules(), true));
                    }
                    if (!routed.contains(m)) {
                        reasons.put(m, Reason.IN_DEVICE_MAP);
                    }
                }
            }
            attachExecutionDeviceHooks(m, exec);
            for (String k : nested) {
                placeKey(root.find(k), resolved.entries().get(k), true);
            }
            apart.getOrDefault(m, List.of()).forEach(apartPaths::add);
        }

        private void attachOffload(Module m, Device exec) {
            if (experts.contains(m)) {
                assign(m, new HookSpec(exec, true, true, false), Reason.ROUTED_EXPERT); // an expert is one unit
                routed.add(m);
                return;
            }
            if (PreloadRule.holdsRoutedExperts(m)) {
                for (Module e : m.children().values()) {
                    if (!isKey(e)) {
                        attachOffload(e, exec);
                    }
                }
                return;
            }
            if (preload.isUnit(m)) {
                assign(m, new HookSpec(exec, true, true, m == root), Reason.PRELOAD_UNIT);
                // the experts of an offloaded unit are fetched as routed, not with the unit's dense weights
                List<String> away = apart.computeIfAbsent(m, x -> new ArrayList<>());
                for (Module holder : expertsHoldersBelow(m)) {
                    away.add(holder.name());
                    attachOffload(holder, exec);
                }
                if (away.isEmpty()) {
                    apart.remove(m);
                }
                return;
            }
            if (m.ownsTensors()) {
                assign(m, new HookSpec(exec, true, false, m == root), Reason.OFFLOADED_TENSORS);
            }
            for (Module c : m.children().values()) {
                if (!isKey(c)) {
                    attachOffload(c, exec);
                }
            }
        }

        /** Modules holding routed experts in {@code m}'s subtree, not inside a key nested in it. */
        private List<Module> expertsHoldersBelow(Module m) {
            List<Module> out = new ArrayList<>();
            for (Module c : m.children().values()) {
                if (isKey(c)) {
                    continue;
                }
                if (PreloadRule.holdsRoutedExperts(c)) {
                    out.add(c);
                } else {
                    out.addAll(expertsHoldersBelow(c));
                }
            }
            return out;
        }

        private void attachExecutionDeviceHooks(Module m, Device exec) {
            if (!hooks.containsKey(m) && withTensors.contains(m)) {
                assign(m, new HookSpec(exec, false, false, false), Reason.EXECUTION_DEVICE);
            }
            if (preload.isUnit(m) || experts.contains(m)) {
                return;
            }
            for (Module c : m.children().values()) {
                if (!isKey(c)) {
                    attachExecutionDeviceHooks(c, exec);
                }
            }
        }

        private void assign(Module m, HookSpec spec, Reason reason) {
            hooks.put(m, spec);
            reasons.put(m, reason);
        }

        /**
         * Tied tensors are one tensor. Their modules may execute on different devices only when one of them keeps
         * the tensor resident: the others then get their own copy on their device (Accelerate does the same).
         */
        private void checkTiedTensors() {
            for (List<String> group : root.tiedTensorGroups()) {
                Map<String, Device> execs = new java.util.LinkedHashMap<>();
                boolean residentSomewhere = false;
                for (String name : group) {
                    Device storage = resolved.deviceOf(name);
                    Device exec = executionDevice(storage);
                    execs.put(name, exec);
                    residentSomewhere |= exec.equals(storage);
                }
                if (new java.util.HashSet<>(execs.values()).size() > 1 && !residentSomewhere) {
                    throw new IllegalArgumentException("tied tensors " + group + " are one tensor but would execute on "
                            + execs + " with none of them resident; keep one of their modules resident on its "
                            + "device (the others get a copy there), or map them to one device");
                }
            }
        }

        /**
         * A preload unit is one unit: the map may place it whole, never split it, except for its routed experts (see
         * {@link PreloadRule}). Where the map was expanded around experts mapped apart, the unit's other keys, which
         * must share one device, become the unit's key again; the experts' keys nest below it. An expert is placed
         * whole.
         */
        private DeviceMap keepUnitsWhole(DeviceMap expanded) {
            LinkedHashMap<String, Device> keys = new LinkedHashMap<>(expanded.entries());
            for (String k : keys.keySet()) {
                for (String above = parent(k); !k.isEmpty(); above = parent(above)) {
                    Module a = root.find(above);
                    if (experts.contains(a)) {
                        throw new IllegalArgumentException("device map splits expert '" + a.name() + "' ("
                                + a.className() + ") at '" + k + "'; an expert is placed whole: map '" + a.name()
                                + "' or its experts module instead");
                    }
                    if (above.isEmpty()) {
                        break;
                    }
                }
            }
            for (Module u : root.modules()) {
                if (!preload.isUnit(u) || keys.containsKey(u.name())) {
                    continue;
                }
                String prefix = u.name().isEmpty() ? "" : u.name() + ".";
                List<String> dense = new ArrayList<>();
                boolean expertsApart = false;
                for (String k : keys.keySet()) {
                    if (k.equals(u.name()) || !k.startsWith(prefix) || (prefix.isEmpty() && k.isEmpty())) {
                        continue;
                    }
                    Module km = root.find(k);
                    if (PreloadRule.holdsRoutedExperts(km) || experts.contains(km)) {
                        expertsApart = true;
                    } else {
                        dense.add(k);
                    }
                }
                if (dense.isEmpty()) {
                    continue;
                }
                Set<Device> devices = new java.util.LinkedHashSet<>();
                dense.forEach(k -> devices.add(keys.get(k)));
                if (devices.size() > 1 || !expertsApart) {
                    List<String> inside = expanded.entries().keySet().stream()
                            .filter(k -> k.startsWith(prefix) && !k.equals(u.name())).toList();
                    throw new IllegalArgumentException("device map splits preload unit '" + u.name() + "' ("
                            + u.className() + ") into " + inside + "; a preload class is placed whole (only its "
                            + "routed experts may be mapped apart): map '" + u.name() + "' or a parent instead");
                }
                Device d = devices.iterator().next();
                LinkedHashMap<String, Device> rebuilt = new LinkedHashMap<>();
                keys.forEach((k, v) -> {
                    if (k.equals(dense.get(0))) {
                        rebuilt.put(u.name(), d);
                    } else if (!dense.contains(k)) {
                        rebuilt.put(k, v);
                    }
                });
                keys.clear();
                keys.putAll(rebuilt);
            }
            // an expert key that says what the key above it says anyway (siblings of an expert mapped apart, which the
            // expansion gave the parent's device) is no key: those experts stay in the unit above
            DeviceMap merged = new DeviceMap(keys);
            keys.entrySet().removeIf(e -> {
                Module km = e.getKey().isEmpty() ? null : root.find(e.getKey());
                if (km == null || !(PreloadRule.holdsRoutedExperts(km) || experts.contains(km))) {
                    return false;
                }
                String above = merged.keyOf(parent(e.getKey()));
                return above != null && merged.entries().get(above).equals(e.getValue());
            });
            return keys.equals(expanded.entries()) ? expanded : new DeviceMap(keys);
        }

        private void describe(Module m, Module unitAbove, List<Entry> out) {
            Device storage = resolved.deviceOf(m.name());
            boolean aboveBlocks = !resolved.entries().containsKey(m.name()) && storage == null;
            Device exec = storage == null ? null : executionDevice(storage);
            HookSpec hook = hooks.get(m);
            Reason reason = reasons.get(m);
            String detail = null;
            if (hook == null) {
                if (PreloadRule.holdsRoutedExperts(m) && m.children().values().stream()
                        .anyMatch(c -> routed.contains(c) || isKey(c))) {
                    reason = Reason.EXPERTS_APART;
                } else if (unitAbove != null) {
                    reason = preload.isUnit(unitAbove) ? Reason.BELOW_PRELOAD_CLASS : Reason.INSIDE_UNIT;
                    detail = preload.isUnit(unitAbove) ? unitAbove.className() : unitAbove.name();
                } else if (!withTensors.contains(m)) {
                    reason = Reason.OWNS_NO_TENSOR;
                } else {
                    reason = Reason.ABOVE_BLOCKS;
                }
            } else if (reason == Reason.PRELOAD_UNIT) {
                detail = m.className();
            }
            if (hook != null && hook.placeSubmodules() && apart.containsKey(m)) {
                String prefix = m.name().isEmpty() ? "" : m.name() + ".";
                String away = apart.get(m).stream().map(p -> p.substring(prefix.length()))
                        .collect(java.util.stream.Collectors.joining(", "));
                detail = (detail == null ? "" : detail + " ") + "(dense weights; apart: " + away + ")";
            }
            if (hook != null && hook.offload() && streamsRows(m)) {
                detail = (detail == null ? "" : detail + " ") + "(streams the rows its ids name, not the table)";
            }
            if (aboveBlocks) {
                exec = hook == null ? null : hook.executionDevice();
            }
            out.add(new Entry(m.name(), m.className(), exec, storage, hook, reason, detail));
            Module nextUnit = unitAbove;
            if (nextUnit == null && (preload.isUnit(m) && storage != null || routed.contains(m)
                    || experts.contains(m) && hook != null && hook.placeSubmodules())) {
                nextUnit = m;
            }
            for (Module c : m.children().values()) {
                describe(c, apartPaths.contains(c.name()) ? null : nextUnit, out);
            }
        }
    }

    /**
     * The tensors a unit places or streams, by full name: its module's own (its subtree's when it places submodules),
     * without the subtrees apart from it.
     */
    static Map<String, TensorSlot> unitTensors(Module m, DispatchPlan.Unit u) {
        String prefix = m.name().isEmpty() ? "" : m.name() + ".";
        Map<String, TensorSlot> out = new LinkedHashMap<>();
        m.namedTensors(true, u.hook().placeSubmodules(), false).forEach((rel, slot) -> {
            String full = prefix + rel;
            if (u.apart().stream().noneMatch(a -> full.startsWith(a + "."))) {
                out.put(full, slot);
            }
        });
        return out;
    }
}
