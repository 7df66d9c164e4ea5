package dev.ferry.examples.cli;

import com.google.inject.Injector;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.AvailableMemory;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.pytorch.DjlBackend;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ferry explain}: the dispatch report of a model under a device map, without devices or weights. */
@Command(name = "explain", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Shows how a model would be dispatched: for every module, where it executes, where its "
                + "weights are stored, whether it gets a hook and why.",
                "Builds the module tree from config.json on meta: reads no weight and needs none of the devices."})
final class ExplainCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", converter = ModelDirConverter.class,
            description = "Model folder (config.json, or model.onnx).")
    Path model;

    @Option(names = "--device-map", required = true, paramLabel = "FILE.json|auto",
            converter = DeviceMapArg.Converter.class,
            description = "A device map in Accelerate's JSON form, or 'auto' to plan one from --max-memory.")
    DeviceMapArg deviceMap;

    @Option(names = "--preload", split = ",", paramLabel = "CLASS",
            description = "Preload classes: each module of such a class is one unit, loaded whole, with no hook "
                    + "below it (e.g. LlamaDecoderLayer).")
    List<String> preload = new ArrayList<>();

    @Option(names = "--max-memory", paramLabel = "DEV=SIZE,...", converter = MaxMemoryArg.Converter.class,
            description = "Budgets for --device-map auto, e.g. 0=2GiB,cpu=8GiB (default: free memory of each device).")
    MaxMemoryArg maxMemory;

    @Option(names = "--format", paramLabel = "table|json", defaultValue = "table",
            description = "table (default) or json: {\"modules\": [{name, class, device, storage, hooked, reason}]}.")
    ReportFormat format;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Injector injector = Backends.injector(Backends.Name.pytorch);
        try (DjlBackend backend = injector.getInstance(DjlBackend.class)) {
            Module root = ModelTrees.onMeta(model, backend);
            Set<String> classes = new LinkedHashSet<>(preload);
            ModelTrees.warnUnknownClasses(root, classes, "--preload", err);
            DeviceMap map = deviceMap.isAuto()
                    ? Planning.plan(root, maxMemory != null ? maxMemory.budgets() : AvailableMemory.of(backend),
                            null, classes, PlanRequest.Strategy.AUTO, null).deviceMap()
                    : deviceMap.map();
            DispatchReport report;
            try {
                report = Dispatcher.plan(root, map, new PreloadRule(classes)).report();
            } catch (IllegalArgumentException e) {
                throw new UsageException("--device-map " + deviceMap + ": " + e.getMessage(), e);
            }
            if (format == ReportFormat.json) {
                out.println(report.toJson());
            } else {
                out.print(report.toTable());
            }
            return 0;
        }
    }
}
