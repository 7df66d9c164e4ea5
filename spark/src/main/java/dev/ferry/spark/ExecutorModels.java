package dev.ferry.spark;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.AvailableMemory;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.DevicePlanner;
import dev.ferry.core.placement.NoSplitModules;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The dispatched models of this JVM (an executor, or the driver in local mode): each is loaded the first time a
 * task asks for it and then shared by every task of the JVM, concurrent ones included, until the JVM exits (a
 * shutdown hook closes them: hooks removed, offload folder, checkpoint and native memory released).
 *
 * <p>The device map, when the spec names none, comes from the executor's resources: the GPU Spark assigned the
 * task ({@code spark.task.resource.gpu.amount}; its address is the CUDA index) as the main device, the model
 * planned {@code auto} onto it, spilling to CPU then disk, under its free memory or the spec's budget; with no GPU,
 * the CPU (the whole model resident), or {@code auto} under the spec's {@code cpu}/{@code disk} budgets when given.
 * One executor with two GPUs gets one model per GPU its tasks were given.
 */
public final class ExecutorModels {

    private static final Logger LOG = LoggerFactory.getLogger(ExecutorModels.class);

    private record Key(ModelSpec spec, String device) {
    }

    private static final Map<Key, LoadedModel> MODELS = new ConcurrentHashMap<>();
    private static final AtomicInteger LOADS = new AtomicInteger();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(ExecutorModels::closeAll, "ferry-close-models"));
    }

    private ExecutorModels() {
    }

    /** The model of {@code spec} for the current task's resources, loaded on first use in this JVM. */
    public static LoadedModel get(ModelSpec spec) {
        OptionalInt gpu = assignedGpu(TaskContext.get());
        Key key = new Key(spec, gpu.isPresent() ? "gpu" + gpu.getAsInt() : "cpu");
        return MODELS.computeIfAbsent(key, k -> load(spec, gpu));
    }

    /** How many models this JVM has loaded so far (one per spec and GPU, however many tasks ran). */
    public static int loads() {
        return LOADS.get();
    }

    /** Closes every model of this JVM (the shutdown hook does it at exit); the next {@link #get} loads anew. */
    public static synchronized void closeAll() {
        List<Key> keys = new ArrayList<>(MODELS.keySet());
        for (Key k : keys) {
            LoadedModel m = MODELS.remove(k);
            if (m != null) {
                try {
                    m.close();
                } catch (RuntimeException e) {
                    LOG.warn("closing the model of {} failed: {}", k.spec().modelDir(), e.toString());
                }
            }
        }
    }

    /** The first GPU address Spark assigned to {@code task}, when it has one and it is a CUDA index. */
    static OptionalInt assignedGpu(TaskContext task) {
        if (task == null) {
            return OptionalInt.empty();
        }
        ResourceInformation gpu = task.resourcesJMap().get("gpu");
        if (gpu == null || gpu.addresses().length == 0) {
            return OptionalInt.empty();
        }
        try {
            return OptionalInt.of(Integer.parseInt(gpu.addresses()[0].trim()));
        } catch (NumberFormatException e) {
            LOG.warn("GPU address '{}' is not a CUDA index; running on the CPU", gpu.addresses()[0]);
            return OptionalInt.empty();
        }
    }

    private static LoadedModel load(ModelSpec spec, OptionalInt gpu) {
        long start = System.nanoTime();
        Path dir = Path.of(spec.modelDir());
        DjlBackend backend = new DjlBackend();
        SafetensorsCheckpoint checkpoint = null;
        HuggingFaceTokenizer tokenizer = null;
        try {
            CausalLM model = ModelFamilies.build(dir, backend);
            Set<String> preload = spec.preload() == null ? NoSplitModules.of(model)
                    : new LinkedHashSet<>(spec.preload());
            DeviceMap map = deviceMap(spec, model, backend, gpu);
            checkpoint = SafetensorsCheckpoint.open(dir);
            CheckpointDispatcher.Result result = new CheckpointDispatcher(backend, new Dispatcher(backend))
                    .loadAndDispatch(model, checkpoint, CheckpointDispatcher.Options.of(map)
                            .withDispatch(DispatchOptions.of(map).withPreloadClasses(preload)
                                    .withPrefetchBlocks(spec.prefetch()))
                            .withOffloadDir(spec.offloadDir() == null ? null : Path.of(spec.offloadDir())));
            tokenizer = Generator.tokenizer(dir).orElse(null);
            double seconds = (System.nanoTime() - start) / 1e9;
            LOADS.incrementAndGet();
            LOG.info("loaded {} in {} s on this executor, device map {}", dir, String.format("%.3f", seconds), map);
            return new LoadedModel(backend, model, map, checkpoint, result, tokenizer, seconds);
        } catch (RuntimeException e) {
            if (tokenizer != null) {
                tokenizer.close();
            }
            if (checkpoint != null) {
                checkpoint.close();
            }
            backend.close();
            throw e;
        }
    }

    /** The spec's map, else one from the executor's resources (see the class comment). */
    static DeviceMap deviceMap(ModelSpec spec, Module model, DjlBackend backend, OptionalInt gpu) {
        if (spec.deviceMapJson() != null) {
            return DeviceMap.parseJson(spec.deviceMapJson());
        }
        Map<Device, Long> given = spec.maxMemory() == null ? Map.of() : ModelSpec.budgets(spec.maxMemory());
        Map<Device, Long> budgets = new LinkedHashMap<>();
        if (gpu.isPresent() && backend.hasCuda()) {
            Device assigned = Device.accelerator(gpu.getAsInt());
            Map<Device, Long> free = AvailableMemory.of(backend);
            // a budget for accelerator 0 (or for the assigned index) is the assigned GPU's budget
            Long budget = given.getOrDefault(assigned, given.get(Device.accelerator(0)));
            budgets.put(assigned, budget != null ? budget : free.getOrDefault(assigned, 0L));
            budgets.put(Device.cpu(), given.getOrDefault(Device.cpu(), free.getOrDefault(Device.cpu(), 0L)));
        } else {
            if (gpu.isPresent()) {
                LOG.warn("Spark assigned GPU {} but this libtorch has no CUDA; running on the CPU", gpu.getAsInt());
            }
            if (given.isEmpty()) {
                return DeviceMap.single(Device.cpu());
            }
            given.forEach((d, b) -> {
                if (!d.isAccelerator()) {
                    budgets.put(d, b);
                }
            });
            if (budgets.isEmpty()) {
                return DeviceMap.single(Device.cpu());
            }
        }
        if (given.containsKey(Device.disk())) {
            budgets.put(Device.disk(), given.get(Device.disk()));
        }
        Set<String> noSplit = new LinkedHashSet<>(NoSplitModules.of(model));
        if (spec.preload() != null) {
            noSplit.addAll(spec.preload());
        }
        PlanRequest request = new PlanRequest(budgets, noSplit, PlanRequest.Strategy.AUTO, null, Map.of(), false,
                true);
        return new DevicePlanner().plan(model, request).deviceMap();
    }
}
