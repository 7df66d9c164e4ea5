package dev.ferry.core.hook;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.CopyStream;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.weights.WeightsStore;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Keeps a module's inputs and weights on its execution device, as Accelerate's {@code AlignDevicesHook}.
 * <ul>
 *   <li>resident ({@code offload == false}): {@code init} places the module's tensors (its whole subtree with
 *   {@code placeSubmodules}) on the execution device once; each forward moves the inputs there;</li>
 *   <li>offloaded: {@code init} frees the tensors (they live in {@code weights}); each forward loads them
 *   from the store onto the execution device before and frees them right after. A tensor already on the
 *   execution device (a tied parameter another active hook loaded) is shared, not loaded twice;</li>
 *   <li>{@code ioSameDevice}: the output goes back to the device the input came from.</li>
 * </ul>
 * Tensors the hook creates (moved inputs, loaded weights) are owned and freed by the hook.
 *
 * <p><b>Threads.</b> What a forward needs lives in shared places: the module's {@link TensorSlot}s (an offloaded
 * block's weights are installed there for the forward and freed after it) and this hook's per-call stack. So a
 * hook holds its <em>forward lock</em> from {@code preForward} to {@code postForward} (or {@code abortForward}
 * when the forward throws), and {@code detach} takes it too. The {@code Dispatcher} gives every hook of one
 * dispatch the same lock: a call of the dispatched model holds it for its whole forward, nested hooks re-enter
 * it, and calls from other threads wait their turn (in arrival order). Weights loaded for one thread's forward
 * are therefore never replaced or freed by another thread's. A hook made by hand without a lock gets one of its
 * own, which serialises only the calls through its module.
 */
public final class AlignDevicesHook implements ModelHook {

    /** How the hook behaves; {@code weights} and {@code backend} are needed only with {@code offload}. */
    public record Config(Device executionDevice, boolean offload, boolean ioSameDevice, boolean placeSubmodules,
                         boolean offloadBuffers, Set<String> skipKeys, WeightsStore weights,
                         TensorBackend backend, Prefetcher<Map<TensorSlot, Tensor>> prefetcher,
                         Set<TensorSlot> sharedResident, Set<String> apart, boolean routed, StreamCounter counter,
                         String lookupTable) {

        public Config(Device executionDevice, boolean offload, boolean ioSameDevice, boolean placeSubmodules,
                      boolean offloadBuffers, Set<String> skipKeys, WeightsStore weights, TensorBackend backend,
                      Prefetcher<Map<TensorSlot, Tensor>> prefetcher, Set<TensorSlot> sharedResident) {
            this(executionDevice, offload, ioSameDevice, placeSubmodules, offloadBuffers, skipKeys, weights, backend,
                    prefetcher, sharedResident, Set.of(), false, null, null);
        }

        public Config(Device executionDevice, boolean offload, boolean ioSameDevice, boolean placeSubmodules,
                      boolean offloadBuffers, Set<String> skipKeys, WeightsStore weights, TensorBackend backend) {
            this(executionDevice, offload, ioSameDevice, placeSubmodules, offloadBuffers, skipKeys, weights, backend,
                    null, Set.of());
        }

        public Config(Device executionDevice, boolean offload, boolean ioSameDevice, boolean placeSubmodules,
                      boolean offloadBuffers, Set<String> skipKeys, WeightsStore weights, TensorBackend backend,
                      Prefetcher<Map<TensorSlot, Tensor>> prefetcher) {
            this(executionDevice, offload, ioSameDevice, placeSubmodules, offloadBuffers, skipKeys, weights, backend,
                    prefetcher, Set.of());
        }

        /**
         * {@code sharedResident}: tied tensors another module keeps resident (on this hook's execution device, or
         * elsewhere with a {@link TiedCopiesHook} standing in a copy): this hook neither places, streams nor frees
         * them. {@code apart}: paths, relative to the module, of subtrees that are units of their own (experts kept
         * apart from a preload unit): this hook neither places nor streams their tensors. {@code routed}: the module is
         * a routed expert, fetched when its router selects it, so never registered with the block prefetcher.
         * {@code counter}: where streamed bytes are counted ({@code null}: not counted). {@code lookupTable}: the
         * module is an offloaded {@link dev.ferry.core.module.RowLookup} and this tensor (its local name) is its table:
         * each forward streams the rows its first argument's ids name ({@link RowGather}), never the whole table, and
         * never ahead ({@code null}: not a lookup).
         */
        public Config {
            skipKeys = skipKeys == null ? Set.of() : Set.copyOf(skipKeys);
            sharedResident = sharedResident == null ? Set.of() : sharedResident;
            apart = apart == null ? Set.of() : Set.copyOf(apart);
            if (offload) {
                Objects.requireNonNull(executionDevice, "an offload hook needs an execution device");
                Objects.requireNonNull(weights, "an offload hook needs a weights store");
                Objects.requireNonNull(backend, "an offload hook needs a tensor backend");
            }
        }

        /** Moves inputs to {@code device}; nothing else. */
        public static Config executionDevice(Device device) {
            return new Config(device, false, false, false, false, Set.of(), null, null);
        }
    }

    private record CallState(Device inputDevice, List<Tensor> temporaries, List<TensorSlot> loaded) {
    }

    private final Config config;
    /** Full name (as stored) → slot, for the tensors this hook loads per forward. */
    private final Map<String, TensorSlot> streamed = new LinkedHashMap<>();
    /** Where each tensor it moved or freed was before, so {@code detach} can put it back. */
    private final Map<TensorSlot, Device> originalDevices = new IdentityHashMap<>();
    private final Map<TensorSlot, String> originalNames = new IdentityHashMap<>();
    /** Buffers that were on meta and that {@code init} loaded for the block's lifetime. */
    private final List<TensorSlot> loadedAtInit = new ArrayList<>();
    /** Per-call state of the forwards in progress (nested calls of one module stack up); guarded by {@link #lock}. */
    private final Deque<CallState> calls = new ArrayDeque<>();
    private final ReentrantLock lock;
    private int prefetchIndex = -1;
    private String unitName = "";
    /** An offloaded lookup's table (full name as stored, and its slot), streamed by rows; else null. */
    private String lookupName;
    private TensorSlot lookupSlot;

    /** A hook with a forward lock of its own. */
    public AlignDevicesHook(Config config) {
        this(config, new ReentrantLock(true));
    }

    /**
     * A hook that holds {@code forwardLock} (shared with the other hooks of its model) from each
     * {@code preForward} to the matching {@code postForward} or {@code abortForward}.
     */
    public AlignDevicesHook(Config config, ReentrantLock forwardLock) {
        this.config = config;
        this.lock = Objects.requireNonNull(forwardLock, "forwardLock");
    }

    /** The lock this hook holds around each forward. */
    public ReentrantLock forwardLock() {
        return lock;
    }

    public Config config() {
        return config;
    }

    @Override
    public void init(Module module) {
        unitName = module.name();
        String prefix = module.name().isEmpty() ? "" : module.name() + ".";
        Device exec = config.executionDevice();
        if (!config.offload()) {
            if (exec != null) {
                unitTensors(module).values().stream()
                        .filter(s -> !config.sharedResident().contains(s)) // another module's hook places those
                        .forEach(s -> place(s, exec));
            }
            return;
        }
        unitTensors(module).forEach((rel, slot) -> {
            String full = prefix + rel;
            if (config.sharedResident().contains(slot)) {
                return; // tied to a resident module's tensor: its hook places it, this one uses it
            }
            if (slot.isParameter() || config.offloadBuffers()) {
                if (!config.weights().contains(full)) {
                    throw new IllegalStateException("offloaded tensor '" + full + "' is not in the weights store");
                }
                if (slot.isMaterialised()) {
                    // a tied tensor is released by the first of its hooks; only that one brings it back
                    originalDevices.put(slot, slot.device());
                    originalNames.put(slot, full);
                }
                slot.release();
                if (rel.equals(config.lookupTable())) {
                    lookupName = full;
                    lookupSlot = slot;
                    return;
                }
                streamed.put(full, slot);
            } else if (slot.isMaterialised()) {
                // buffers stay on the execution device for the block's lifetime, as Accelerate keeps them
                place(slot, exec);
            } else if (config.weights().contains(full)) {
                loadedAtInit.add(slot);
                slot.set(load(full, slot, exec));
            } else {
                throw new IllegalStateException("buffer '" + full + "' is neither materialised nor in the weights store");
            }
        });
        if (!streamed.isEmpty() && config.prefetcher() != null && !config.routed()) {
            long bytes = streamed.values().stream().mapToLong(TensorSlot::byteSize).sum();
            prefetchIndex = config.prefetcher().register(() -> materialiseBlock(true), bytes);
        }
    }

    /** The tensors this hook places or streams: the module's (its subtree's with placeSubmodules) but those apart. */
    private Map<String, TensorSlot> unitTensors(Module module) {
        Map<String, TensorSlot> all = module.namedTensors(true, config.placeSubmodules(), false);
        if (!config.apart().isEmpty()) {
            all.keySet().removeIf(rel -> config.apart().stream().anyMatch(a -> rel.startsWith(a + ".")));
        }
        return all;
    }

    private void place(TensorSlot slot, Device device) {
        if (slot.isMaterialised() && !device.equals(slot.device())) {
            originalDevices.putIfAbsent(slot, slot.device());
            slot.moveTo(device);
        }
    }

    /** Takes the forward lock (released by {@code postForward} or {@code abortForward}), then prepares the call. */
    @Override
    public Object[] preForward(Module module, Object[] args) {
        lock.lock();
        try {
            return prepare(args);
        } catch (RuntimeException | Error e) {
            lock.unlock();
            throw e;
        }
    }

    private Object[] prepare(Object[] args) {
        Device exec = config.executionDevice();
        List<TensorSlot> loaded = new ArrayList<>(0);
        List<Tensor> temporaries = new ArrayList<>(0);
        Device inputDevice = config.ioSameDevice() ? DeviceTransfers.find(args) : null;
        if (lookupSlot != null) {
            try {
                args = gatherRows(args, loaded, temporaries);
            } catch (RuntimeException | Error e) {
                temporaries.forEach(Tensor::close);
                loaded.forEach(TensorSlot::release);
                throw e;
            }
        }
        if (!streamed.isEmpty()) {
            Map<TensorSlot, Tensor> block = prefetchIndex >= 0 ? config.prefetcher().take(prefetchIndex) : null;
            if (block == null) {
                block = materialiseBlock(false);
            } else {
                CopyStream copies = config.backend().copyStream(exec);
                block.values().forEach(copies::handOver); // made on the copy stream, used on the compute stream
            }
            Iterator<Map.Entry<TensorSlot, Tensor>> it = block.entrySet().iterator();
            long bytes = 0;
            try {
                while (it.hasNext()) {
                    Map.Entry<TensorSlot, Tensor> e = it.next();
                    TensorSlot slot = e.getKey();
                    if (slot.isMaterialised() && exec.equals(slot.device())) {
                        e.getValue().close(); // tied: already brought here by another active hook, which frees it
                        continue;
                    }
                    slot.set(e.getValue());
                    loaded.add(slot);
                    bytes += slot.byteSize();
                }
                if (config.counter() != null) {
                    config.counter().streamed(unitName, bytes, config.routed());
                }
            } catch (RuntimeException | Error e) {
                it.forEachRemaining(left -> left.getValue().close());
                loaded.forEach(TensorSlot::release);
                temporaries.forEach(Tensor::close);
                throw e;
            }
        }
        try {
            Object[] moved = exec == null ? args
                    : (Object[]) DeviceTransfers.send(args, exec, config.skipKeys(), temporaries);
            calls.push(new CallState(inputDevice, temporaries, loaded));
            return moved;
        } catch (RuntimeException | Error e) {
            temporaries.forEach(Tensor::close);
            loaded.forEach(TensorSlot::release);
            throw e;
        }
    }

    /**
     * An offloaded lookup's forward: installs the rows its ids name as the table and gives the arguments with the
     * ids renumbered into those rows (both owned by this call, freed after it).
     */
    private Object[] gatherRows(Object[] args, List<TensorSlot> loaded, List<Tensor> temporaries) {
        if (args.length == 0 || !(args[0] instanceof Tensor ids)) {
            throw new IllegalArgumentException("'" + unitName + "' looks up rows of '" + lookupName
                    + "' by the ids of its first argument, a tensor; got "
                    + (args.length == 0 ? "no argument" : args[0] == null ? "null" : args[0].getClass().getName()));
        }
        RowGather.Gathered rows = RowGather.gather(config.weights(), lookupName, lookupSlot.spec().dtype(), ids,
                config.backend(), config.executionDevice());
        temporaries.add(rows.ids());
        try {
            lookupSlot.setRows(rows.table());
        } catch (RuntimeException e) {
            rows.table().close();
            throw e;
        }
        loaded.add(lookupSlot);
        if (config.counter() != null) {
            config.counter().streamed(unitName, rows.bytes(), false);
        }
        Object[] out = args.clone();
        out[0] = rows.ids();
        return out;
    }

    /**
     * Reads this block's offloaded tensors from the store onto the execution device, as one batch; the caller
     * owns the result. Runs on the forward's thread, or ahead of it on the prefetcher's.
     */
    Map<TensorSlot, Tensor> materialiseBlock(boolean ahead) {
        Map<TensorSlot, Tensor> block = new IdentityHashMap<>(streamed.size() * 2);
        Device exec = config.executionDevice();
        CopyStream copies = ahead ? config.backend().copyStream(exec) : CopyStream.NONE;
        try {
            copies.enter(exec); // ahead of the forward: beside its compute, not queued behind it
            for (Map.Entry<String, TensorSlot> e : streamed.entrySet()) {
                TensorSlot slot = e.getValue();
                block.put(slot, load(e.getKey(), slot, exec, ahead));
            }
            copies.complete(exec);
        } catch (RuntimeException ex) {
            block.values().forEach(Tensor::close);
            throw ex;
        }
        return block;
    }

    /** The stored tensor {@code name} on {@code device}, converted to the slot's dtype if stored otherwise. */
    private Tensor load(String name, TensorSlot slot, Device device) {
        return load(name, slot, device, false);
    }

    private Tensor load(String name, TensorSlot slot, Device device, boolean ahead) {
        var weights = config.weights();
        if (weights.streamsFromFile(name)) {
            // read into a buffer the backend owns: native code never reads a file another process can truncate
            return config.backend().fromFilled(weights.spec(name), device, slot.spec().dtype(),
                    dst -> weights.read(name, dst));
        }
        java.nio.ByteBuffer bytes = weights.bytes(name);
        if (ahead) {
            touchPages(bytes);
        }
        return config.backend().fromBytes(bytes, config.weights().spec(name), device, slot.spec().dtype());
    }

    /**
     * Reads one byte per page so that a memory-mapped tensor is paged in now, on the prefetch thread, even
     * when the backend will use the mapping in place (zero copy) and would otherwise fault it in mid-forward.
     */
    private static void touchPages(java.nio.ByteBuffer bytes) {
        if (!bytes.isDirect()) {
            return;
        }
        int sum = 0;
        for (int i = bytes.position(); i < bytes.limit(); i += 4096) {
            sum += bytes.get(i);
        }
        if (sum == 42 && bytes.limit() < 0) {
            throw new AssertionError(); // keeps the reads from being optimised away
        }
    }

    /** Frees what the call loaded and moved, sends the output back if asked, and releases the forward lock. */
    @Override
    public Object postForward(Module module, Object output) {
        try {
            CallState call = calls.pop();
            for (TensorSlot slot : call.loaded()) {
                slot.release();
            }
            DeviceTransfers.closeExcept(call.temporaries(), output);
            return outputBack(call, output);
        } finally {
            lock.unlock();
        }
    }

    /** The forward threw: frees what {@code preForward} loaded and moved for it, and releases the forward lock. */
    @Override
    public void abortForward(Module module) {
        try {
            CallState call = calls.pop();
            call.loaded().forEach(TensorSlot::release);
            call.temporaries().forEach(Tensor::close);
        } finally {
            lock.unlock();
        }
    }

    private Object outputBack(CallState call, Object output) {
        if (call.inputDevice() == null) {
            return output;
        }
        List<Tensor> created = new ArrayList<>(0);
        Object back = DeviceTransfers.send(output, call.inputDevice(), Set.of(), created);
        if (!created.isEmpty()) {
            // the forward's own results were replaced by their copies on the input device
            Set<Tensor> kept = DeviceTransfers.tensorsIn(back);
            for (Tensor t : DeviceTransfers.tensorsIn(output)) {
                if (!kept.contains(t)) {
                    t.close();
                }
            }
        }
        return back;
    }

    /**
     * Puts every tensor back where it was before {@code init}: reloads offloaded ones from the store. Waits for
     * the forwards in progress on other threads (it takes the forward lock).
     */
    @Override
    public void detach(Module module) {
        lock.lock();
        try {
            restore();
        } finally {
            lock.unlock();
        }
    }

    private void restore() {
        originalDevices.forEach((slot, device) -> {
            String name = originalNames.get(slot);
            if (name != null && !slot.isMaterialised()) {
                slot.set(load(name, slot, device));
            } else {
                slot.moveTo(device);
            }
        });
        loadedAtInit.forEach(TensorSlot::release);
        loadedAtInit.clear();
        originalDevices.clear();
        originalNames.clear();
        streamed.clear();
        if (config.prefetcher() != null) {
            config.prefetcher().close();
        }
    }

    /** A prefetcher for offload hooks: blocks of tensors on their execution device, freed if never taken. */
    public static Prefetcher<Map<TensorSlot, Tensor>> blockPrefetcher(int blocksAhead) {
        return new Prefetcher<>(blocksAhead, block -> block.values().forEach(Tensor::close));
    }

    @Override
    public String toString() {
        return "AlignDevicesHook" + config;
    }
}
