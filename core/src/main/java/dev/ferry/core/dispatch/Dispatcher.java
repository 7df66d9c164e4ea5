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
                Hooks.add(m, new AlignDevicesHook(new AlignDevicesHook.Config(h.executionDevice(), h.offload(),
                        h.ioSameDevice(), h.placeSubmodules(), options.offloadBuffers(), options.skipKeys(),
                        h.offload() ? store : null, h.offload() ? backend : null, h.offload() ? prefetcher : null,
                        shared), forwardLock), true);
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
            String prefix = m.name().isEmpty() ? "" : m.name() + ".";
            m.namedTensors(true, u.hook().placeSubmodules(), false).forEach((rel, slot) -> {
                String full = prefix + rel;
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

        Walk(Module root, DeviceMap map, PreloadRule preload) {
            this.root = root;
            this.map = map;
            this.resolved = map.resolve(root);
            this.preload = preload;
            this.main = map.mainDevice();
            markTensorOwners(root);
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
            checkUnitsAreWhole();
            checkTiedTensors();
            walk(root);
            List<Entry> entries = new ArrayList<>();
            describe(root, null, entries);
            DispatchReport report = new DispatchReport(main, resolved, entries, memory());
            List<DispatchPlan.Unit> units = new ArrayList<>();
            for (Entry e : entries) {
                if (!e.hooked()) {
                    continue;
                }
                Module m = root.find(e.name());
                HookSpec h = e.hook();
                List<String> members = new ArrayList<>();
                if (h.placeSubmodules()) {
                    m.visit(x -> members.add(x.name()));
                } else {
                    members.add(m.name());
                }
                String block = resolved.keyOf(e.name());
                units.add(new DispatchPlan.Unit(e.name(), block, e.storage(), h.executionDevice(), h.offload(),
                        preload.isUnit(m), members, e.reason(), h));
            }
            return new DispatchPlan(main, resolved, units, report, List.of());
        }

        /** Bytes kept resident per device, bytes streamed per forward per storage, and the largest unit streamed. */
        private DispatchReport.Memory memory() {
            Map<Device, Long> resident = new java.util.TreeMap<>();
            Map<Device, Long> offloaded = new java.util.TreeMap<>();
            root.namedTensors().forEach((name, slot) -> {
                Device storage = resolved.deviceOf(name);
                (map.isOffloaded(storage) ? offloaded : resident).merge(storage, slot.byteSize(), Long::sum);
            });
            String largest = null;
            long largestBytes = 0;
            for (Map.Entry<Module, HookSpec> e : hooks.entrySet()) {
                if (e.getValue().offload()) {
                    long bytes = 0;
                    for (var slot : e.getKey().namedTensors(true, e.getValue().placeSubmodules(), false).values()) {
                        bytes += slot.byteSize();
                    }
                    if (bytes > largestBytes || bytes == largestBytes && largest != null
                            && e.getKey().name().compareTo(largest) < 0) {
                        largestBytes = bytes;
                        largest = e.getKey().name();
                    }
                }
            }
            return new DispatchReport.Memory(resident, offloaded, largest, largestBytes);
        }

        private Device executionDevice(Device storage) {
            return map.executionDevice(storage); // the main device follows the map as the user wrote it
        }

        private void walk(Module m) {
            Device storage = resolved.entries().get(m.name());
            if (storage != null) {
                Device exec = executionDevice(storage);
                boolean isRoot = m == root;
                if (exec.equals(storage)) {
                    assign(m, new HookSpec(exec, false, true, isRoot), Reason.IN_DEVICE_MAP);
                } else {
                    attachOffload(m, exec);
                    if (!hooks.containsKey(m)) {
                        assign(m, new HookSpec(exec, false, false, isRoot), Reason.IN_DEVICE_MAP);
                    } else {
                        reasons.put(m, Reason.IN_DEVICE_MAP);
                    }
                }
                attachExecutionDeviceHooks(m, exec);
                return; // resolved keys never nest: nothing below is in the map
            }
            if (m == root) {
                assign(m, new HookSpec(main, false, false, true), Reason.ROOT);
            }
            for (Module c : m.children().values()) {
                walk(c);
            }
        }

        private void attachOffload(Module m, Device exec) {
            if (preload.isUnit(m)) {
                assign(m, new HookSpec(exec, true, true, m == root), Reason.PRELOAD_UNIT);
                return;
            }
            if (m.ownsTensors()) {
                assign(m, new HookSpec(exec, true, false, m == root), Reason.OFFLOADED_TENSORS);
            }
            for (Module c : m.children().values()) {
                attachOffload(c, exec);
            }
        }

        private void attachExecutionDeviceHooks(Module m, Device exec) {
            if (!hooks.containsKey(m) && withTensors.contains(m)) {
                assign(m, new HookSpec(exec, false, false, false), Reason.EXECUTION_DEVICE);
            }
            if (preload.isUnit(m)) {
                return;
            }
            for (Module c : m.children().values()) {
                attachExecutionDeviceHooks(c, exec);
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

        /** A preload unit is one unit: the map may place it whole, never split it. */
        private void checkUnitsAreWhole() {
            for (Module m : root.modules()) {
                if (!preload.isUnit(m)) {
                    continue;
                }
                String prefix = m.name().isEmpty() ? "" : m.name() + ".";
                List<String> inside = resolved.entries().keySet().stream()
                        .filter(k -> !k.equals(m.name()) && k.startsWith(prefix) && !(prefix.isEmpty() && k.isEmpty()))
                        .toList();
                if (!inside.isEmpty()) {
                    throw new IllegalArgumentException("device map splits preload unit '" + m.name() + "' ("
                            + m.className() + ") into " + inside + "; a preload class is placed whole: map '"
                            + m.name() + "' or a parent instead");
                }
            }
        }

        private void describe(Module m, Module unitAbove, List<Entry> out) {
            Device storage = resolved.deviceOf(m.name());
            boolean aboveBlocks = !resolved.entries().containsKey(m.name()) && storage == null;
            Device exec = storage == null ? null : executionDevice(storage);
            HookSpec hook = hooks.get(m);
            Reason reason = reasons.get(m);
            String detail = null;
            if (hook == null) {
                if (unitAbove != null) {
                    reason = Reason.BELOW_PRELOAD_CLASS;
                    detail = unitAbove.className();
                } else if (!withTensors.contains(m)) {
                    reason = Reason.OWNS_NO_TENSOR;
                } else {
                    reason = Reason.ABOVE_BLOCKS;
                }
            } else if (reason == Reason.PRELOAD_UNIT) {
                detail = m.className();
            }
            if (aboveBlocks) {
                exec = hook == null ? null : hook.executionDevice();
            }
            out.add(new Entry(m.name(), m.className(), exec, storage, hook, reason, detail));
            Module nextUnit = unitAbove != null ? unitAbove : (preload.isUnit(m) && storage != null ? m : null);
            for (Module c : m.children().values()) {
                describe(c, nextUnit, out);
            }
        }
    }
}
