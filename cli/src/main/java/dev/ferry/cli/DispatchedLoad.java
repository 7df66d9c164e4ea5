package dev.ferry.cli;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.weights.OffloadFolderRefusedException;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.WeightsStore;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Loads a checkpoint into a model built on meta, dispatched by a device map (Accelerate's
 * {@code load_checkpoint_and_dispatch}), with progress on stderr.
 */
final class DispatchedLoad {

    /**
     * What loading did. Closing it closes the checkpoint and offload folder, which disk-offloaded blocks read from
     * (memory-mapped) at each forward: close it once the model is no longer run.
     */
    record Loaded(Module root, DeviceMap map, CheckpointDispatcher.Result result, double seconds, long bytes,
                  WeightsStore checkpoint) implements AutoCloseable {
        /** Removes the hooks (stopping any prefetch), then closes the offload folder and the checkpoint. */
        @Override
        public void close() {
            Dispatcher.remove(root);
            result.close();
            checkpoint.close();
        }

        DispatchReport report() {
            return result.report();
        }

        /**
         * {@code cpu 208.50 KiB resident, 0 B offloaded to host memory, 497.81 KiB offloaded to disk}: every tensor
         * of the model counted once (buffers computed from config.json, such as rotary frequencies, included; a
         * tied tensor where it is resident), as the plan's totals and the dispatch report count them, so the three
         * agree. (The loader's own counts are of checkpoint tensors only.)
         */
        String placement() {
            Map<Device, Long> resident = new TreeMap<>();
            long host = 0;
            long disk = 0;
            Map<TensorSlot, List<String>> names = new IdentityHashMap<>();
            root.namedTensors(true, true, true).forEach((n, slot) ->
                    names.computeIfAbsent(slot, k -> new ArrayList<>()).add(n));
            for (Map.Entry<TensorSlot, List<String>> e : names.entrySet()) {
                Device storage = e.getValue().stream().map(map::deviceOf).filter(d -> !map.isOffloaded(d))
                        .findFirst().orElse(map.deviceOf(e.getValue().get(0)));
                long b = e.getKey().spec().byteSize();
                if (!map.isOffloaded(storage)) {
                    resident.merge(storage, b, Long::sum);
                } else if (storage.kind() == Device.Kind.CPU) {
                    host += b;
                } else {
                    disk += b;
                }
            }
            StringBuilder sb = new StringBuilder();
            resident.forEach((d, b) -> sb.append(d).append(' ').append(SizeStrings.format(b)).append(" resident, "));
            sb.append(SizeStrings.format(host)).append(" offloaded to host memory, ")
                    .append(SizeStrings.format(disk)).append(" offloaded to disk");
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
     *                   from; {@code null} to read them in place from the checkpoint's safetensors files. A folder
     *                   Ferry may not write into is bad usage (exit 2), nothing in it touched
     * @param overwrite  an offload folder Ferry did not make may be rewritten
     */
    static Loaded load(CheckpointDispatcher loader, Module root, Path modelDir, DeviceMap map, Set<String> preload,
                       int prefetchBlocks, Path offloadDir, boolean overwrite, String option, PrintWriter err) {
        DispatchPlan plan;
        try {
            plan = Dispatcher.plan(root, map, new PreloadRule(preload));
        } catch (IllegalArgumentException e) {
            throw new UsageException(option + ": " + e.getMessage(), e);
        }
        long start = System.nanoTime();
        SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(modelDir);
        try {
            long total = ModelTrees.bytes(root);
            DispatchOptions dispatch = DispatchOptions.of(map).withPreloadClasses(preload)
                    .withPrefetchBlocks(prefetchBlocks);
            try (Progress progress = Progress.start(err, "loading", total, "KiB", 1024,
                    SizeStrings.format(total) + " from " + modelDir.getFileName())) {
                CheckpointDispatcher.Result result;
                try {
                    result = loader.loadAndDispatch(root, checkpoint, plan, CheckpointDispatcher.Options.of(map)
                            .withDispatch(dispatch).withOffloadDir(offloadDir).withOverwriteOffloadDir(overwrite)
                            .withProgress(progress::step));
                } catch (OffloadFolderRefusedException e) {
                    throw new UsageException("--offload-dir: " + e.getMessage(), e);
                }
                double seconds = (System.nanoTime() - start) / 1e9;
                progress.finish(String.format("done in %.3f s", seconds));
                if (result.offloadFolder() != null) {
                    err.println("offload: " + (result.offloadFolderReused() ? "reusing " : "wrote ") + offloadDir
                            + " (" + result.offloadFolder().keys().size() + " tensors)");
                }
                return new Loaded(root, map.resolve(root), result, seconds, total, checkpoint);
            }
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
    }
}
