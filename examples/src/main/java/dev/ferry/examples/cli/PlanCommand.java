package dev.ferry.examples.cli;

import com.google.inject.Injector;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.NoSplitModules;
import dev.ferry.core.placement.AvailableMemory;
import dev.ferry.core.placement.DevicePlan;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DjlBackend;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ferry plan}: a device map for a checkpoint folder, from config.json and tensor headers only. */
@Command(name = "plan", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Plans a device map for a model under per-device memory budgets, with the bytes each device "
                + "gets. Reads config.json only: no weight is read, no device is used.",
                "With --format json, stdout is the device map in Accelerate's form (usable as --device-map) and "
                        + "the per-device totals go to stderr."})
final class PlanCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", converter = ModelDirConverter.class,
            description = "Model folder (config.json, or model.onnx).")
    Path model;

    @Option(names = "--max-memory", paramLabel = "DEV=SIZE,...", converter = MaxMemoryArg.Converter.class,
            description = "Budgets, e.g. 0=2GiB,cpu=8GiB,disk=100GiB (sizes like 10GiB, 500MB, 1024). Only the "
                    + "devices named are used; disk is unbounded unless named. Default: each accelerator's free "
                    + "memory and the host's available memory.")
    MaxMemoryArg maxMemory;

    @Option(names = "--no-split", split = ",", paramLabel = "CLASS",
            description = "Classes never split across devices (default: the model's repeated block, e.g. "
                    + "LlamaDecoderLayer).")
    List<String> noSplit;

    @Option(names = "--strategy", paramLabel = "NAME", defaultValue = "auto", converter = StrategyConverter.class,
            description = "auto (default), balanced, balanced_low_0 or sequential.")
    PlanRequest.Strategy strategy;

    @Option(names = "--dtype", paramLabel = "TYPE", converter = DTypeConverter.class,
            description = "Plan for weights loaded as float16, bfloat16 or float32 (default: as declared).")
    DType dtype;

    @Option(names = "--format", paramLabel = "table|json", defaultValue = "table",
            description = "table (default) or json (Accelerate's device map form).")
    ReportFormat format;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Injector injector = Backends.injector(Backends.Name.pytorch);
        try (DjlBackend backend = injector.getInstance(DjlBackend.class)) {
            Module root = ModelTrees.onMeta(model, backend);
            String checkpoint = checkHeaders(root);
            Set<String> classes = noSplit == null ? NoSplitModules.of(root) : new LinkedHashSet<>(noSplit);
            ModelTrees.warnUnknownClasses(root, classes, "--no-split", err);
            Map<Device, Long> budgets = maxMemory != null ? maxMemory.budgets() : AvailableMemory.of(backend);
            DevicePlan plan;
            try {
                plan = Planning.plan(root, budgets, classes, Set.of(), strategy, dtype);
            } catch (IllegalArgumentException e) {
                throw new UsageException("--max-memory " + Planning.describeBudgets(budgets) + ": " + e.getMessage(), e);
            }
            plan.warnings().forEach(w -> err.println("warning: " + w));
            if (format == ReportFormat.json) {
                out.println(plan.deviceMap().toJson());
                err.print(totals(plan));
                if (checkpoint != null) {
                    err.println(checkpoint);
                }
            } else {
                out.printf("device map of %s (%s, %s), strategy %s, no-split %s%n", model.getFileName(),
                        root.className(), SizeStrings.format(plan.totalBytes()), strategy.name().toLowerCase(),
                        classes);
                if (checkpoint != null) {
                    out.println(checkpoint);
                }
                out.print(mapTable(plan));
                out.println();
                out.print(totals(plan));
            }
            return 0;
        }
    }

    /**
     * When the folder has safetensors, checks their headers (no weight is read) against the model the config
     * describes, so a plan is never made for a checkpoint that would not load; {@code null} without weights.
     */
    private String checkHeaders(Module root) {
        if (!Files.exists(model.resolve(SafetensorsCheckpoint.SINGLE_FILE))
                && !Files.exists(model.resolve(SafetensorsCheckpoint.INDEX_FILE))) {
            return null;
        }
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(model)) {
            CheckpointDispatcher.Match match;
            try {
                match = CheckpointDispatcher.match(root, ckpt);
            } catch (IllegalArgumentException e) {
                throw new IllegalStateException(ckpt.source() + ": " + e.getMessage(), e);
            }
            return "checkpoint: " + match.keyOf().size() + " tensors in " + ckpt.files().size()
                    + " safetensors file(s) match the model (headers only)"
                    + (match.unexpectedKeys().isEmpty() ? "" : "; unused: " + match.unexpectedKeys());
        }
    }

    static String mapTable(DevicePlan plan) {
        int width = "module".length();
        for (String k : plan.deviceMap().entries().keySet()) {
            width = Math.max(width, display(k).length());
        }
        String fmt = "%-" + width + "s  %s%n";
        StringBuilder sb = new StringBuilder(String.format(fmt, "module", "device"));
        plan.deviceMap().entries().forEach((k, d) -> sb.append(String.format(fmt, display(k), d)));
        return sb.toString();
    }

    private static String display(String key) {
        return key.isEmpty() ? "(whole model)" : key;
    }

    /** One line per device: bytes placed, budget, room kept free for offloaded blocks. */
    static String totals(DevicePlan plan) {
        StringBuilder sb = new StringBuilder(String.format("%-6s  %12s  %12s  %12s%n", "device", "planned", "budget",
                "reserved"));
        Set<Device> devices = new java.util.TreeSet<>(plan.budgets().keySet());
        devices.addAll(plan.bytesPerDevice().keySet());
        devices.forEach(d -> {
            long b = plan.bytesPerDevice().getOrDefault(d, 0L);
            Long budget = plan.budgets().get(d);
            Long reserved = plan.reservedBytes().get(d);
            sb.append(String.format("%-6s  %12s  %12s  %12s%n", d, SizeStrings.format(b),
                    budget == null ? "unbounded" : SizeStrings.format(budget),
                    reserved == null || reserved == 0 ? "-" : SizeStrings.format(reserved)));
        });
        sb.append(String.format("%-6s  %12s%n", "total", SizeStrings.format(plan.totalBytes())));
        return sb.toString();
    }
}
