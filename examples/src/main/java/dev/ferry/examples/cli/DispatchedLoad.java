package dev.ferry.examples.cli;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.DTypeConversion;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.WeightsStore;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Loads a checkpoint into a model built on meta, dispatched by a device map (Accelerate's
 * {@code load_checkpoint_and_dispatch}), with progress on stderr.
 */
final class DispatchedLoad {

    /**
     * What loading did. Closing it closes the checkpoint and offload folder, which disk-offloaded blocks read from
     * (memory-mapped) at each forward: close it once the model is no longer run.
     */
    record Loaded(Module root, CheckpointDispatcher.Result result, double seconds, long bytes,
                  WeightsStore checkpoint, WeightsStore offload) implements AutoCloseable {
        /** Removes the hooks (stopping any prefetch), then closes the stores. */
        @Override
        public void close() {
            Dispatcher.remove(root);
            if (offload != null) {
                offload.close();
            }
            checkpoint.close();
        }

        DispatchReport report() {
            return result.report();
        }

        /** {@code cpu 400.00 KiB resident, 0 B in host memory, 306.00 KiB streamed from disk}. */
        String placement() {
            StringBuilder sb = new StringBuilder();
            result.bytesPerDevice().forEach((d, b) -> sb.append(d).append(' ').append(SizeStrings.format(b))
                    .append(" resident, "));
            sb.append(SizeStrings.format(result.hostOffloadBytes())).append(" offloaded to host memory, ")
                    .append(SizeStrings.format(result.diskOffloadBytes())).append(" offloaded to disk");
            return sb.toString();
        }
    }

    private DispatchedLoad() {
    }

    /**
     * Checks {@code map} against the model (an error here is bad usage, exit 2), then loads.
     *
     * @param option     the option the map came from, for messages ({@code --device-map map.json})
     * @param offloadDir where disk-offloaded weights are written in Accelerate's offload-folder layout and read
     *                   from; {@code null} to read them in place from the checkpoint's safetensors files
     */
    static Loaded load(CheckpointDispatcher loader, Module root, Path modelDir, DeviceMap map, Set<String> preload,
                       Path offloadDir, String option, PrintWriter err) {
        try {
            Dispatcher.plan(root, map, new PreloadRule(preload));
        } catch (IllegalArgumentException e) {
            throw new UsageException(option + ": " + e.getMessage(), e);
        }
        long start = System.nanoTime();
        SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(modelDir);
        WeightsStore offload = null;
        try {
            offload = offloadDir == null ? null : offloadFolder(root, map, checkpoint, offloadDir, err);
            long total = ModelTrees.bytes(root);
            DispatchOptions dispatch = DispatchOptions.of(map).withPreloadClasses(preload).withOffloadStore(offload);
            try (Progress progress = Progress.start(err, "loading", total, "KiB", 1024,
                    SizeStrings.format(total) + " from " + modelDir.getFileName())) {
                CheckpointDispatcher.Result result = loader.loadAndDispatch(root, checkpoint,
                        CheckpointDispatcher.Options.of(map).withDispatch(dispatch).withProgress(progress::step));
                double seconds = (System.nanoTime() - start) / 1e9;
                progress.finish(String.format("done in %.3f s", seconds));
                return new Loaded(root, result, seconds, total, checkpoint, offload);
            }
        } catch (RuntimeException e) {
            if (offload != null) {
                offload.close();
            }
            checkpoint.close();
            throw e;
        }
    }

    /**
     * The offload folder for the disk-mapped tensors: reused when its index matches them, written otherwise
     * (Accelerate's {@code offload_state_dict} layout, one {@code .dat} per tensor, in the model's dtype).
     */
    private static OffloadFolder offloadFolder(Module root, DeviceMap map, SafetensorsCheckpoint checkpoint,
                                               Path folder, PrintWriter err) {
        DeviceMap resolved = map.resolve(root);
        Map<String, TensorSpec> expected = new LinkedHashMap<>();
        Map<String, List<String>> namesOf = new LinkedHashMap<>();
        IdentityHashMap<TensorSlot, String> first = new IdentityHashMap<>();
        root.stateDict().forEach((name, slot) -> {
            String owner = first.computeIfAbsent(slot, s -> name);
            namesOf.computeIfAbsent(owner, n -> new java.util.ArrayList<>()).add(name);
        });
        first.forEach((slot, name) -> {
            if (Device.disk().equals(resolved.deviceOf(name))) {
                expected.put(name, slot.spec());
            }
        });
        if (expected.isEmpty()) {
            return null;
        }
        OffloadFolder.Staleness staleness = OffloadFolder.check(folder, expected);
        if (!staleness.isStale()) {
            err.println("offload: reusing " + folder + " (" + expected.size() + " tensors)");
            return OffloadFolder.open(folder);
        }
        err.println("offload: writing " + expected.size() + " disk-offloaded tensors to " + folder);
        OffloadFolder.Writer writer = OffloadFolder.writer(folder);
        expected.forEach((name, spec) -> {
            String key = namesOf.get(name).stream().filter(checkpoint::contains).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("checkpoint lacks tensor '" + name + "'"));
            TensorSpec stored = checkpoint.spec(key);
            ByteBuffer bytes = checkpoint.bytes(key);
            if (stored.dtype() != spec.dtype()) {
                bytes = DTypeConversion.convert(bytes, stored.dtype(), spec.dtype());
            }
            writer.put(name, spec, bytes);
        });
        return writer.commit();
    }
}
