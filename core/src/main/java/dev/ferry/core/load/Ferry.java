package dev.ferry.core.load;

import dev.ferry.core.inject.BackendModule;
import dev.ferry.core.inject.ModelLoaders;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The one door: load a model folder dispatched over accelerators, CPU memory and disk, on whichever backend is on
 * the class path, in one call (Accelerate's {@code load_checkpoint_and_dispatch}):
 *
 * <pre>{@code
 * try (DispatchedModel model = Ferry.model(Path.of("models/llama"))
 *         .deviceMap("auto").maxMemory("0=20GiB,cpu=60GiB")   // or .deviceMap(Map.of(...)) given once
 *         .offloadFolder(Path.of("/tmp/offload"))
 *         .load()) {
 *     long[] tokens = model.generate(new long[] {1, 17, 42}, GenerationConfig.greedy(16));
 *     System.out.println(model.report().toTable());
 * }
 * }</pre>
 *
 * <p>Backends are found as DJL finds engines: each backend jar lists its Guice module in
 * {@code META-INF/services/dev.ferry.core.inject.BackendModule}; {@link Builder#load()} makes one Guice injector of
 * core's module and the chosen backend's, per model, and asks the backend's {@link ModelLoader}. Nobody needs to know
 * Guice to load a model. The preload default is the family's block class ({@code LlamaDecoderLayer},
 * {@code GPT2Block}: one hook per block), as on the command line; {@link Builder#noPreload()} turns it off.
 */
public final class Ferry {

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Ferry.class);

    private Ferry() {
    }

    /** A builder for the model in folder {@code dir}; nothing is read until {@link Builder#load()}. */
    public static Builder model(Path dir) {
        return new Builder(dir);
    }

    /** Names of the backends on the class path ({@code onnx}, {@code pytorch}). */
    public static List<String> backends() {
        return BackendModule.names();
    }

    /** Collects the options; every setter checks its value at once, and {@link #load()} checks them together. */
    public static final class Builder {
        private final Path dir;
        private DeviceMap deviceMap;
        private PlanRequest.Strategy strategy = PlanRequest.Strategy.AUTO;
        private boolean mapGiven;
        private Map<Device, Long> maxMemory;
        private Set<String> noSplit;
        private Set<String> preload;
        private Path offloadFolder;
        private boolean overwriteOffloadFolder;
        private DType dtype;
        private int prefetch = 1;
        private String backend;
        private QuantizationScheme quantize;

        private Builder(Path dir) {
            if (dir == null) {
                throw new IllegalArgumentException("model folder: null");
            }
            this.dir = dir;
        }

        /** An explicit device map (Accelerate's form). Given once: a second map is refused. */
        public Builder deviceMap(DeviceMap map) {
            if (map == null) {
                throw new IllegalArgumentException("deviceMap: null");
            }
            once();
            this.deviceMap = map;
            return this;
        }

        /**
         * A device map as Accelerate's dict: module name → accelerator index ({@code 0}, {@code "0"}),
         * {@code "cpu"} or {@code "disk"}.
         */
        public Builder deviceMap(Map<String, ?> map) {
            if (map == null) {
                throw new IllegalArgumentException("deviceMap: null");
            }
            LinkedHashMap<String, Device> entries = new LinkedHashMap<>();
            map.forEach((k, v) -> {
                try {
                    entries.put(k, Device.parse(String.valueOf(v)));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("device map entry '" + k + "': " + e.getMessage(), e);
                }
            });
            return deviceMap(DeviceMap.of(entries));
        }

        /**
         * {@code "auto"}, {@code "balanced"}, {@code "balanced_low_0"} or {@code "sequential"} (planned under
         * {@link #maxMemory}), or a map in Accelerate's JSON form ({@code {"model.layers.3": "disk", ...}}).
         */
        public Builder deviceMap(String map) {
            if (map == null) {
                throw new IllegalArgumentException("deviceMap: null");
            }
            if (map.strip().startsWith("{")) {
                return deviceMap(DeviceMap.parseJson(map));
            }
            once();
            this.strategy = PlanRequest.Strategy.parse(map.strip());
            return this;
        }

        /** Budgets as {@code "0=20GiB,cpu=60GiB,disk=1TB"} (sizes as {@link SizeStrings} reads them). */
        public Builder maxMemory(String budgets) {
            if (budgets == null || budgets.isBlank()) {
                throw new IllegalArgumentException("maxMemory: expected DEVICE=SIZE,..., got '" + budgets + "'");
            }
            LinkedHashMap<String, String> out = new LinkedHashMap<>();
            for (String part : budgets.split(",")) {
                String[] kv = part.split("=", 2);
                if (kv.length != 2 || kv[0].isBlank() || kv[1].isBlank()) {
                    throw new IllegalArgumentException("maxMemory: '" + part.strip() + "' is not DEVICE=SIZE");
                }
                if (out.put(kv[0].strip(), kv[1].strip()) != null) {
                    throw new IllegalArgumentException("maxMemory: device '" + kv[0].strip() + "' given twice");
                }
            }
            return maxMemory(out);
        }

        /** Budgets in Accelerate's {@code max_memory} form: keys {@code 0}, {@code "cpu"}, {@code "disk"}; values bytes or size strings. */
        public Builder maxMemory(Map<?, ?> budgets) {
            if (budgets == null) {
                throw new IllegalArgumentException("maxMemory: null");
            }
            Map<Device, Long> parsed = PlanRequest.parseMaxMemory(budgets);
            if (parsed.size() != budgets.size()) {
                throw new IllegalArgumentException("maxMemory: a device is given twice in " + budgets);
            }
            this.maxMemory = parsed;
            return this;
        }

        /** Classes never split across devices when planning (default: the family's block class). */
        public Builder noSplit(String... classes) {
            requireNames("noSplit", classes);
            this.noSplit = new LinkedHashSet<>(Arrays.asList(classes));
            return this;
        }

        /** Preload classes: each such module is one unit with one hook (default: the family's block class). */
        public Builder preload(String... classes) {
            requireNames("preload", classes);
            if (classes.length == 0) {
                throw new IllegalArgumentException("preload: name at least one class, or call noPreload()");
            }
            this.preload = new LinkedHashSet<>(Arrays.asList(classes));
            return this;
        }

        /** Turns preload off: every module owning tensors gets its own hook, as Accelerate does for resident blocks. */
        public Builder noPreload() {
            this.preload = Set.of();
            return this;
        }

        /** Disk-offloaded weights are written here (Accelerate's offload-folder layout) and read from it. */
        public Builder offloadFolder(Path folder) {
            if (folder == null) {
                throw new IllegalArgumentException("offloadFolder: null");
            }
            this.offloadFolder = folder;
            return this;
        }

        /** An offload folder Ferry did not make (an Accelerate one) may be rewritten. */
        public Builder overwriteOffloadFolder() {
            this.overwriteOffloadFolder = true;
            return this;
        }

        /** Weights as {@code float16}, {@code bfloat16} or {@code float32} (default: as config.json declares). */
        public Builder dtype(String torchName) {
            if (torchName == null) {
                throw new IllegalArgumentException("dtype: null; give float16, bfloat16 or float32");
            }
            return dtype(DType.fromTorch(torchName));
        }

        public Builder dtype(DType type) {
            if (type == null) {
                throw new IllegalArgumentException("dtype: null; give float16, bfloat16 or float32");
            }
            this.dtype = type;
            return this;
        }

        /**
         * Weights quantized as they are loaded: {@code "int8"}, weight-only int8 with one scale per output channel for
         * the Linear layers of the decoder blocks ({@link dev.ferry.core.quant.QuantizedLinears} says which and why).
         * Resident, CPU-offloaded and disk-offloaded blocks then hold (and stream) int8 bytes, dequantized on the
         * execution device in each forward; planning counts int8 sizes. A checkpoint written by {@code ferry
         * quantize} is loaded quantized without this option, and is never quantized again. PyTorch backend only.
         */
        public Builder quantize(String scheme) {
            return quantize(QuantizationScheme.parse(scheme));
        }

        public Builder quantize(QuantizationScheme scheme) {
            if (scheme == null) {
                throw new IllegalArgumentException("quantize: null; give \"int8\"");
            }
            this.quantize = scheme;
            return this;
        }

        /** Offloaded blocks read ahead on a background thread (default 1; 0 turns prefetch off). */
        public Builder prefetch(int blocks) {
            if (blocks < 0) {
                throw new IllegalArgumentException("prefetch: must be 0 (off) or more, got " + blocks);
            }
            this.prefetch = blocks;
            return this;
        }

        /**
         * {@code "pytorch"} or {@code "onnx"}. Default: the only backend on the class path; with both, PyTorch when
         * the folder has a config.json, ONNX when it has only a model.onnx.
         */
        public Builder backend(String name) {
            if (name == null) {
                throw new IllegalArgumentException("backend: null; give \"pytorch\" or \"onnx\", or leave it out");
            }
            this.backend = name;
            return this;
        }

        /**
         * The request as validated values (what a backend's {@link ModelLoader} receives).
         *
         * @throws ModelFolderException for a folder no backend can load (a GGUF file, no config.json nor model.onnx)
         */
        public LoadRequest request() {
            ModelFolder.inspect(dir);
            if (deviceMap != null && (maxMemory != null || noSplit != null)) {
                throw new IllegalArgumentException("maxMemory and noSplit plan a map; an explicit deviceMap was given");
            }
            return new LoadRequest(dir, deviceMap, strategy, maxMemory, noSplit, preload, offloadFolder,
                    overwriteOffloadFolder, dtype, prefetch, quantize);
        }

        /**
         * Loads and dispatches the model; close the result.
         *
         * <p>Budgets above what the machine has are logged as warnings ({@link MachineBudgets}).
         *
         * @throws IllegalArgumentException for a bad option (a device-map key naming no module of the model, budgets
         *                                  that cannot hold it, an unknown backend), before any weight is read
         * @throws ModelFolderException     for a folder whose weights the backend cannot read (PyTorch pickles
         *                                  without safetensors, GGUF, missing shards), before any weight is read
         * @throws BackendUnavailableException for a backend that cannot start (no libtorch native library)
         */
        public DispatchedModel load() {
            LoadRequest request = request();
            ModelFolder folder = ModelFolder.inspect(dir);
            String name = backendName(folder);
            folder.requireWeightsFor(name);
            MachineBudgets.warnings(maxMemory, offloadFolder).forEach(w -> LOG.warn("maxMemory: {}", w));
            return ModelLoaders.forBackend(name).load(request);
        }

        private String backendName(ModelFolder folder) {
            if (backend != null) {
                return backend;
            }
            List<String> names = BackendModule.names();
            if (names.size() == 1) {
                return names.get(0);
            }
            if (names.contains("pytorch") && folder.config()) {
                return "pytorch";
            }
            if (names.contains("onnx") && folder.onnx()) {
                return "onnx";
            }
            throw new IllegalArgumentException("no backend on the class path can load " + dir + " (found "
                    + (names.isEmpty() ? "none" : String.join(", ", names)) + "); add ferry-backend-pytorch or "
                    + "ferry-backend-onnx");
        }

        private static void requireNames(String option, String[] classes) {
            if (classes == null) {
                throw new IllegalArgumentException(option + ": null");
            }
            for (int i = 0; i < classes.length; i++) {
                if (classes[i] == null) {
                    throw new IllegalArgumentException(option + ": class name " + i + " is null");
                }
            }
        }

        private void once() {
            if (mapGiven) {
                throw new IllegalArgumentException("deviceMap: given twice; give the map (or 'auto') once");
            }
            mapGiven = true;
        }
    }
}
