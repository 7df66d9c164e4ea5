package dev.ferry.cli;

import com.google.inject.Injector;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DevicePlan;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DjlBackend;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
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

    @Mixin
    PlanningOptions planning;

    @Mixin
    PreloadOption preload;

    @Option(names = "--format", paramLabel = "table|json", defaultValue = "table",
            description = "table (default) or json (Accelerate's device map form).")
    ReportFormat format;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Injector injector = Backends.injector(Backends.Name.pytorch);
        try (DjlBackend backend = injector.getInstance(DjlBackend.class)) {
            Module root = planning.quantized(ModelTrees.onMeta(model, backend));
            String checkpoint = checkHeaders(root);
            Set<String> classes = planning.noSplitClasses(root, err);
            Set<String> preloadClasses = preload.classes(root, err);
            DevicePlan plan = planning.plan(root, backend, classes, preloadClasses, false, err);
            if (format == ReportFormat.json) {
                out.println(plan.deviceMap().toJson());
                err.print(totals(plan));
                if (checkpoint != null) {
                    err.println(checkpoint);
                }
            } else {
                out.printf("device map of %s (%s, %s), strategy %s, no-split %s, preload %s%n", model.getFileName(),
                        root.className(), SizeStrings.format(plan.totalBytes()), planning.strategy.name().toLowerCase(),
                        classes, preloadClasses);
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

    /** What the {@code reserved} column means, printed under the totals whenever a device has a reserve. */
    static final String RESERVED_NOTE = "reserved: room kept free on a main device for the largest block that may be "
            + "offloaded after it, which is brought there for its forward; planned + reserved stays within the budget";

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
        if (plan.reservedBytes().values().stream().anyMatch(r -> r > 0)) {
            sb.append(RESERVED_NOTE).append(System.lineSeparator());
        }
        return sb.toString();
    }
}
