package dev.ferry.cli;

import dev.ferry.core.placement.NoSplitModules;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.AvailableMemory;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.DevicePlan;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.load.MachineBudgets;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorBackend;
import java.io.PrintWriter;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.Option;

/**
 * The planning options, the same on {@code plan}, {@code explain} and {@code generate} (a picocli mixin), so that
 * {@code explain} and {@code generate} with {@code --device-map auto} can reproduce what {@code plan} printed.
 * Accelerate's names are accepted: {@code --no-split-module-classes} ({@code no_split_module_classes}).
 */
final class PlanningOptions {

    @Option(names = "--max-memory", paramLabel = "DEV=SIZE,...", converter = MaxMemoryArg.Converter.class,
            description = "Budgets (Accelerate's max_memory), e.g. 0=2GiB,cpu=8GiB,disk=100GiB (sizes like 10GiB, "
                    + "500MB, 1024), one per device. Only the devices named are used; disk is unbounded unless named. "
                    + "Default: each accelerator's free memory and the host's available memory.")
    MaxMemoryArg maxMemory;

    @Option(names = {"--no-split", "--no-split-module-classes"}, split = ",", paramLabel = "CLASS",
            description = "Classes never split across devices (default: the model's repeated block, e.g. "
                    + "LlamaDecoderLayer). Preload classes are never split either.")
    List<String> noSplit;

    @Option(names = "--strategy", paramLabel = "NAME", defaultValue = "auto", converter = StrategyConverter.class,
            description = "auto (default), balanced, balanced_low_0 or sequential.")
    PlanRequest.Strategy strategy;

    @Option(names = "--dtype", paramLabel = "TYPE", converter = DTypeConverter.class,
            description = "Weights loaded as float16, bfloat16 or float32 (default: as config.json declares).")
    DType dtype;

    @Option(names = "--quantize", paramLabel = "SCHEME", converter = QuantizeSchemeConverter.class,
            description = "int8: the decoder layers' Linear weights quantized as they are loaded (weight-only, one "
                    + "scale per output channel), held and streamed as int8; planning counts int8 sizes. A checkpoint "
                    + "written by 'ferry quantize' is int8 without it. PyTorch backend only.")
    QuantizationScheme quantize;

    /** {@code root} with {@code --quantize} applied (on meta); a usage error for a tree the PyTorch backend did not build. */
    Module quantized(Module root) {
        if (quantize == null) {
            return root;
        }
        if (!(root instanceof dev.ferry.pytorch.models.CausalLM)) {
            throw new UsageException("--quantize: the model is read from model.onnx; quantization is for the PyTorch "
                    + "backend (config.json and safetensors)");
        }
        dev.ferry.pytorch.models.ModelFamilies.quantize(root, quantize);
        return root;
    }

    /** {@code --no-split}, or the model's repeated block class when not given; unknown classes warned about. */
    Set<String> noSplitClasses(Module root, PrintWriter err) {
        if (noSplit == null) {
            return NoSplitModules.of(root);
        }
        Set<String> classes = new LinkedHashSet<>(noSplit);
        ModelTrees.warnUnknownClasses(root, classes, "--no-split", err);
        return classes;
    }

    /** The budgets: {@code --max-memory}, else what the backend reports free. */
    Map<Device, Long> budgets(TensorBackend tensors) {
        return maxMemory != null ? maxMemory.budgets() : AvailableMemory.of(tensors);
    }

    /**
     * The plan under these options, never splitting {@code classes} ({@link #noSplitClasses}). The tree's tensors must be in their declared dtype when {@code --dtype} is to
     * apply ({@code dtypeApplied} false); a tree already built in {@code --dtype} passes true.
     */
    DevicePlan plan(Module root, TensorBackend tensors, Set<String> classes, Set<String> preload, boolean dtypeApplied,
                    PrintWriter err) {
        Map<Device, Long> budgets = budgets(tensors);
        if (maxMemory != null) {
            MachineBudgets.warnings(budgets, null).forEach(w -> err.println("warning: --max-memory: " + w));
        }
        DevicePlan plan;
        try {
            plan = Planning.plan(root, budgets, classes, preload, strategy, dtypeApplied ? null : dtype);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--max-memory " + Planning.describeBudgets(budgets) + ": " + e.getMessage(), e);
        }
        Planning.newWarnings(plan).forEach(w -> err.println("warning: " + w));
        return plan;
    }

    /**
     * The map of {@code --device-map}: planned under these options for {@code auto}; a file's map as it is, with one
     * warning naming the planning options given that it makes moot.
     */
    DeviceMap deviceMap(DeviceMapArg arg, Module root, TensorBackend tensors, Set<String> preload,
                        boolean dtypeApplied, PrintWriter err) {
        if (arg.isAuto()) {
            return plan(root, tensors, noSplitClasses(root, err), preload, dtypeApplied, err).deviceMap();
        }
        List<String> moot = new java.util.ArrayList<>();
        if (maxMemory != null) {
            moot.add("--max-memory");
        }
        if (noSplit != null) {
            moot.add("--no-split");
        }
        if (strategy != PlanRequest.Strategy.AUTO) {
            moot.add("--strategy");
        }
        if (!moot.isEmpty()) {
            err.println("warning: " + String.join(", ", moot) + (moot.size() == 1 ? " is" : " are")
                    + " ignored with --device-map " + arg + " (they plan --device-map auto)");
        }
        return arg.map();
    }
}
