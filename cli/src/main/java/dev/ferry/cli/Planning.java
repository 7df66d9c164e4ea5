package dev.ferry.cli;

import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DevicePlan;
import dev.ferry.core.placement.DevicePlanner;
import dev.ferry.core.placement.NoSplitModules;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import java.util.Map;
import java.util.Set;

/** Device maps planned from budgets ({@code --device-map auto}, {@code ferry plan}). */
final class Planning {

    private Planning() {
    }

    /**
     * Plans {@code root} for a dispatch with {@code preload} (the planner keeps preload units whole); when
     * {@code noSplit} is null the family's default is used ({@link NoSplitModules}, transformers'
     * {@code _no_split_modules}).
     */
    static DevicePlan plan(Module root, Map<Device, Long> budgets, Set<String> noSplit, Set<String> preload,
                           PlanRequest.Strategy strategy, DType dtype) {
        Set<String> classes = noSplit != null ? noSplit : NoSplitModules.of(root);
        PlanRequest request = new PlanRequest(budgets, classes, strategy, dtype, Map.of(), false, true, preload);
        return new DevicePlanner().plan(root, request);
    }

    /**
     * The plan's warnings the command line has not already given: every class named by {@code --no-split} or
     * {@code --preload} is checked against the tree before planning ({@link ModelTrees#warnUnknownClasses}, which
     * names the option and lists the classes), so the planner's own "matches no module" warning would say it twice.
     */
    static java.util.List<String> newWarnings(DevicePlan plan) {
        return plan.warnings().stream()
                .filter(w -> !(w.startsWith("no-split class '") && w.endsWith("' matches no module of the model")))
                .toList();
    }

    /** {@code --max-memory} as one line: {@code cpu=400.00 KiB, disk unbounded}. */
    static String describeBudgets(Map<Device, Long> budgets) {
        StringBuilder sb = new StringBuilder();
        budgets.forEach((d, b) -> sb.append(sb.length() == 0 ? "" : ", ").append(d).append('=')
                .append(SizeStrings.format(b)));
        if (!budgets.containsKey(Device.disk())) {
            sb.append(", disk unbounded");
        }
        return sb.toString();
    }
}
