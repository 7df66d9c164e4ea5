package dev.ferry.cli;

import com.google.inject.Injector;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.pytorch.DjlBackend;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
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

    @Option(names = "--device-map", required = true, paramLabel = "FILE.json|JSON|auto",
            converter = DeviceMapArg.Converter.class,
            description = "A device map in Accelerate's JSON form, or 'auto' to plan one with the planning options "
                    + "below (as 'ferry plan' does).")
    DeviceMapArg deviceMap;

    @Mixin
    PreloadOption preload;

    @Mixin
    PlanningOptions planning;

    @Option(names = "--format", paramLabel = "table|json", defaultValue = "table",
            description = "table (default) or json: {\"modules\": [{name, class, device, storage, hooked, reason}]}.")
    ReportFormat format;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Injector injector = Backends.injector(Backends.Name.pytorch);
        try (DjlBackend backend = injector.getInstance(DjlBackend.class)) {
            Module root = planning.quantized(ModelTrees.onMeta(model, backend));
            Set<String> classes = preload.classes(root, err);
            DeviceMap map = planning.deviceMap(deviceMap, root, backend, classes, false, err);
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
