package dev.ferry.core.dispatch;

import dev.ferry.core.hook.CloseOnDetach;
import dev.ferry.core.hook.Hooks;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.HostMemoryStore;
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.WeightsStore;
import jakarta.inject.Inject;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Accelerate's {@code load_checkpoint_and_dispatch}: fills a model built on meta from a checkpoint, each
 * tensor going straight from its file to where its block is mapped (resident blocks to their device,
 * CPU-offloaded blocks to host memory, disk-offloaded blocks left in the checkpoint), then dispatches. The
 * whole model never sits in host memory: one tensor is in flight at a time.
 */
public final class CheckpointDispatcher {

    private static final Logger LOG = LoggerFactory.getLogger(CheckpointDispatcher.class);

    private final TensorBackend backend;
    private final Dispatcher dispatcher;

    @Inject
    public CheckpointDispatcher(TensorBackend backend, Dispatcher dispatcher) {
        this.backend = backend;
        this.dispatcher = dispatcher;
    }

    /**
     * @param strict     unexpected checkpoint keys are an error (otherwise they are reported)
     * @param offloadDir where disk-offloaded tensors are written (Accelerate's {@code offload_folder});
     *                   {@code null}: read them from the checkpoint in place. Ferry writes only into a new or
     *                   empty folder or one it made itself (marked by {@code ferry-offload.json}); one it made is
     *                   reused only when made from this very checkpoint (same files, sizes, times and headers)
     *                   and untouched since, else rewritten. Anything else is refused, untouched.
     * @param overwriteOffloadDir an offload folder Ferry did not make (an {@code index.json} of Accelerate's) may
     *                   be rewritten: its index and the {@code .dat} files of the same names are replaced; no
     *                   other file of it is removed
     * @param progress   called with the bytes of each tensor placed (for progress bars); may be null
     */
    public record Options(DispatchOptions dispatch, boolean strict, Path offloadDir, boolean overwriteOffloadDir,
                          LongConsumer progress) {
        public static Options of(DeviceMap map) {
            return new Options(DispatchOptions.of(map), false, null, false, null);
        }

        public Options withDispatch(DispatchOptions d) {
            return new Options(d, strict, offloadDir, overwriteOffloadDir, progress);
        }

        public Options withStrict(boolean s) {
            return new Options(dispatch, s, offloadDir, overwriteOffloadDir, progress);
        }

        public Options withOffloadDir(Path dir) {
            return new Options(dispatch, strict, dir, overwriteOffloadDir, progress);
        }

        public Options withOverwriteOffloadDir(boolean overwrite) {
            return new Options(dispatch, strict, offloadDir, overwrite, progress);
        }

        public Options withProgress(LongConsumer p) {
            return new Options(dispatch, strict, offloadDir, overwriteOffloadDir, p);
        }
    }

    /**
     * What was loaded where. With {@link Options#offloadDir}, {@code offloadFolder} is the folder the disk-offloaded
     * blocks read from ({@code offloadFolderReused}: it matched the model and was not rewritten); close the result
     * once the model is no longer used, to unmap it.
     */
    public record Result(DispatchReport report, List<String> unexpectedKeys, Map<Device, Long> bytesPerDevice,
                         long hostOffloadBytes, long diskOffloadBytes, OffloadFolder offloadFolder,
                         boolean offloadFolderReused) implements AutoCloseable {
        @Override
        public void close() {
            if (offloadFolder != null) {
                offloadFolder.close();
            }
        }
    }

    /**
     * How a checkpoint's tensors meet a model, from the checkpoint's headers alone: for each distinct tensor of
     * the model, its names and the key it is stored under (a tied tensor under any of its names), and the
     * checkpoint keys the model has no place for.
     */
    public record Match(Map<TensorSlot, List<String>> namesOf, Map<TensorSlot, String> keyOf,
                        List<String> unexpectedKeys) {
    }

    /**
     * The checkpoint as {@code root} names and holds its tensors: 4.x spellings and fused experts under the tree's
     * names ({@link CheckpointNames}), then float weights of int8 modules quantized on read ({@link QuantizingStore};
     * a checkpoint that has the scales is read as it is).
     */
    static WeightsStore viewed(Module root, WeightsStore checkpoint) {
        return QuantizingStore.view(root, CheckpointNames.view(root, checkpoint));
    }

    /**
     * Matches {@code checkpoint} against {@code root} without reading any weight.
     *
     * @throws IllegalArgumentException naming every tensor the checkpoint lacks, or whose shape (or a dtype
     *                                  that cannot be converted) differs, with both specs
     */
    public static Match match(Module root, WeightsStore checkpoint) {
        checkpoint = viewed(root, checkpoint);
        Map<String, TensorSlot> stateDict = root.stateDict();
        Map<TensorSlot, List<String>> namesOf = new IdentityHashMap<>();
        stateDict.forEach((n, s) -> namesOf.computeIfAbsent(s, k -> new ArrayList<>()).add(n));
        Map<TensorSlot, String> keyOf = new IdentityHashMap<>();
        List<String> missing = new ArrayList<>();
        List<String> mismatched = new ArrayList<>();
        WeightsStore viewed = checkpoint;
        namesOf.forEach((slot, names) -> {
            String key = names.stream().filter(viewed::contains).findFirst().orElse(null);
            if (key == null) {
                missing.add(CheckpointNames.describeMissing(root, names.get(0)));
                return;
            }
            TensorSpec stored = viewed.spec(key);
            if (!java.util.Arrays.equals(stored.shape(), slot.spec().shape())
                    || !convertible(stored.dtype(), slot.spec().dtype())) {
                mismatched.add("'" + key + "': checkpoint has " + stored + ", model expects " + slot.spec());
                return;
            }
            keyOf.put(slot, key);
        });
        if (!mismatched.isEmpty()) {
            throw new IllegalArgumentException("checkpoint tensors do not match the model: " + mismatched);
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("checkpoint lacks " + missing.size() + " tensor(s) of the model: "
                    + (missing.size() > 8 ? missing.subList(0, 8) + " ..." : missing));
        }
        Set<String> expected = new LinkedHashSet<>(stateDict.keySet());
        List<String> unexpected = checkpoint.keys().stream().filter(k -> !expected.contains(k)).sorted().toList();
        return new Match(namesOf, keyOf, unexpected);
    }

    public Result loadAndDispatch(Module root, WeightsStore checkpoint, Options options) {
        return loadAndDispatch(root, checkpoint,
                Dispatcher.plan(root, options.dispatch().deviceMap(), options.dispatch().preload()), options);
    }

    /**
     * Loads and dispatches by {@code plan}, made by {@link Dispatcher#plan} for {@code root} under the options'
     * map and preload rule (planned once: the resolved map decides where each tensor is loaded, and the same plan
     * is hooked).
     */
    public Result loadAndDispatch(Module root, WeightsStore stored, DispatchPlan plan, Options options) {
        WeightsStore checkpoint = viewed(root, stored);
        DeviceMap map = options.dispatch().deviceMap();
        DeviceMap resolved = plan.deviceMap();
        Device main = plan.mainDevice();
        Match match = match(root, checkpoint);
        Map<TensorSlot, List<String>> namesOf = match.namesOf();
        Map<TensorSlot, String> keyOf = match.keyOf();
        List<String> unexpected = match.unexpectedKeys();
        if (!unexpected.isEmpty()) {
            if (options.strict()) {
                throw new IllegalArgumentException("checkpoint has tensors the model does not: " + unexpected);
            }
            LOG.warn("checkpoint tensors not used by the model: {}", unexpected);
        }

        // blocks offloaded to CPU memory stream to the main device every forward: page-locked where it copies faster
        HostMemoryStore host = new HostMemoryStore(backend.pageLocking(main));
        Map<String, String> diskAliases = new LinkedHashMap<>();
        Map<Device, Long> perDevice = new LinkedHashMap<>();
        long hostBytes = 0;
        long diskBytes = 0;
        List<TensorSlot> placed = new ArrayList<>();
        try {
            for (Map.Entry<TensorSlot, String> e : keyOf.entrySet()) {
                TensorSlot slot = e.getKey();
                String key = e.getValue();
                // a tied tensor lives where any of its modules keeps it resident, else with its first name
                String name = namesOf.get(slot).stream().filter(n -> !map.isOffloaded(resolved.deviceOf(n)))
                        .findFirst().orElse(namesOf.get(slot).get(0));
                Device storage = resolved.deviceOf(name);
                boolean resident = !map.isOffloaded(storage);
                TensorSpec spec = slot.spec();
                if (resident && storage.isAccelerator() && checkpoint.streamsFromFile(key)) {
                    // read straight into the backend's (page-locked) staging buffer, then up: one copy, not two
                    slot.set(backend.fromFilled(checkpoint.spec(key), storage, spec.dtype(),
                            dst -> checkpoint.read(key, dst)));
                    placed.add(slot);
                    perDevice.merge(storage, spec.byteSize(), Long::sum);
                } else if (resident) {
                    slot.set(backend.fromBytes(bytesAs(checkpoint, key, spec.dtype()), spec, storage));
                    placed.add(slot);
                    perDevice.merge(storage, spec.byteSize(), Long::sum);
                } else if (storage.kind() == Device.Kind.CPU) {
                    host.put(name, spec, bytesAs(checkpoint, key, spec.dtype()));
                    hostBytes += spec.byteSize();
                } else {
                    diskAliases.put(name, key);
                    diskBytes += spec.byteSize();
                }
                if (options.progress() != null) {
                    options.progress().accept(spec.byteSize());
                }
            }
        } catch (RuntimeException ex) {
            placed.forEach(TensorSlot::release);
            host.close();
            throw ex;
        }
        Map<String, TensorSpec> diskSpecs = keyOfSpecs(keyOf, namesOf, diskAliases);
        // in place, tensors keep the checkpoint's dtype: the hooks convert when loading, into reused buffers
        WeightsStore disk = new CheckpointView(checkpoint, diskAliases, diskSpecs, false);
        OffloadFolder folder = null;
        boolean reused = false;
        DispatchReport report;
        try {
            if (options.offloadDir() != null && !diskAliases.isEmpty()) {
                // an offload folder holds the model's dtype, so its tensors are used as they are read
                OffloadFolder.Prepared prepared = offloadFolder(options.offloadDir(), options.overwriteOffloadDir(),
                        new CheckpointView(checkpoint, diskAliases, diskSpecs, true), checkpoint, diskAliases);
                folder = prepared.folder();
                reused = prepared.reused();
                disk = folder;
            }
            List<WeightsStore> stores = new ArrayList<>();
            if (options.dispatch().offloadStore() != null) {
                stores.add(options.dispatch().offloadStore());
            }
            stores.add(host);
            stores.add(disk);
            report = dispatcher.dispatch(root, plan,
                    options.dispatch().withOffloadStore(new DispatchStore(stores, List.of())));
            Hooks.add(root, new CloseOnDetach(host), true); // unlocks the host memory when the model is removed
        } catch (RuntimeException ex) {
            placed.forEach(TensorSlot::release);
            host.close();
            if (folder != null) {
                folder.close();
            }
            throw ex;
        }
        if (folder == null && checkpoint instanceof QuantizingStore q
                && diskAliases.values().stream().anyMatch(q.quantizedWeights()::contains)) {
            LOG.warn("blocks left on disk are read from the float checkpoint and quantized to int8 at every forward; "
                    + "write a quantized checkpoint once (ferry quantize) or give an offload folder to store int8");
        }
        LOG.info("loaded {} tensors: {} resident, {} bytes in host memory, {} bytes left on disk", keyOf.size(),
                perDevice, hostBytes, diskBytes);
        return new Result(report, unexpected, perDevice, hostBytes, diskBytes, folder, reused);
    }

    /**
     * Reuses a folder Ferry made from this checkpoint that still matches the disk-offloaded tensors; (re)writes
     * it otherwise (see {@link OffloadFolder#openFor}). A tensor the checkpoint already stores in the model's
     * dtype is written as a reference into its safetensors file (no second copy on disk, as Accelerate's index
     * allows); a converted one as a {@code .dat} file.
     */
    private static OffloadFolder.Prepared offloadFolder(Path dir, boolean overwrite, WeightsStore disk,
                                                        WeightsStore checkpoint, Map<String, String> checkpointKeys) {
        Map<String, TensorSpec> expected = new LinkedHashMap<>();
        disk.keys().forEach(k -> expected.put(k, disk.spec(k)));
        // the folder can only be checked against a checkpoint made of files; any other store is never trusted
        List<Path> files = checkpoint instanceof SafetensorsCheckpoint st ? st.files() : null;
        return OffloadFolder.openFor(dir, expected, files, overwrite, writer -> {
            Map<String, TensorSpec> copies = new LinkedHashMap<>();
            for (String name : expected.keySet()) {
                String key = checkpointKeys.get(name);
                if (!(checkpoint instanceof SafetensorsCheckpoint st && st.spec(key).equals(expected.get(name)))) {
                    copies.put(name, expected.get(name));
                }
            }
            writer.plan(copies);
            for (String name : expected.keySet()) {
                String key = checkpointKeys.get(name);
                if (checkpoint instanceof SafetensorsCheckpoint st && st.spec(key).equals(expected.get(name))) {
                    writer.reference(name, st.fileOf(key).path(), key);
                } else {
                    writer.putFrom(disk, name);
                }
            }
        });
    }

    private static Map<String, TensorSpec> keyOfSpecs(Map<TensorSlot, String> keyOf,
                                                      Map<TensorSlot, List<String>> namesOf,
                                                      Map<String, String> diskAliases) {
        Map<String, TensorSpec> specs = new LinkedHashMap<>();
        keyOf.forEach((slot, key) -> {
            String name = namesOf.get(slot).get(0);
            if (diskAliases.containsKey(name)) {
                specs.put(name, slot.spec());
            }
        });
        return specs;
    }

    private static boolean convertible(DType from, DType to) {
        return from == to || (from.isFloatingPoint() && to.isFloatingPoint()
                && DTypeConversion.supports(from, to));
    }

    private static ByteBuffer bytesAs(WeightsStore store, String key, DType target) {
        DType stored = store.spec(key).dtype();
        ByteBuffer bytes = store.bytes(key);
        return stored == target ? bytes : DTypeConversion.convert(bytes, stored, target);
    }

    /**
     * Disk-offloaded tensors read from the checkpoint in place, under the model's names: as stored, or
     * converted to the model's dtype ({@code convert}).
     */
    private static final class CheckpointView implements WeightsStore {
        private final WeightsStore checkpoint;
        private final Map<String, String> keys;
        private final Map<String, TensorSpec> specs;
        private final boolean convert;

        CheckpointView(WeightsStore checkpoint, Map<String, String> keys, Map<String, TensorSpec> specs,
                       boolean convert) {
            this.checkpoint = checkpoint;
            this.keys = keys;
            this.specs = specs;
            this.convert = convert;
        }

        @Override
        public Set<String> keys() {
            return Collections.unmodifiableSet(keys.keySet());
        }

        @Override
        public TensorSpec spec(String key) {
            TensorSpec s = specs.get(key);
            if (s == null) {
                throw new IllegalArgumentException("no disk-offloaded tensor '" + key + "'");
            }
            return convert ? s : checkpoint.spec(keys.get(key));
        }

        @Override
        public ByteBuffer bytes(String key) {
            TensorSpec model = specs.get(key);
            if (model == null) {
                throw new IllegalArgumentException("no disk-offloaded tensor '" + key + "'");
            }
            return convert ? bytesAs(checkpoint, keys.get(key), model.dtype()) : checkpoint.bytes(keys.get(key));
        }

        @Override
        public void read(String key, ByteBuffer dst) {
            if (convert) {
                WeightsStore.super.read(key, dst);
            } else {
                checkpoint.read(keys.get(key), dst);
            }
        }

        @Override
        public boolean streamsFromFile(String key) {
            return !convert && checkpoint.streamsFromFile(keys.get(key));
        }
    }
}
