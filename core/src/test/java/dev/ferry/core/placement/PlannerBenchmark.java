package dev.ferry.core.placement;

import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.Device;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Median time to plan the 405B-shaped tree over 8 × 80 GiB + 100 GiB cpu + disk (no-split LlamaDecoderLayer).
 * A plain main until the benchmarks move to JMH; run it with the test classpath:
 * {@code java -cp core/target/classes:core/target/test-classes:<deps> dev.ferry.core.placement.PlannerBenchmark}.
 */
public final class PlannerBenchmark {

    private PlannerBenchmark() {
    }

    public static void main(String[] args) {
        int runs = args.length > 0 ? Integer.parseInt(args[0]) : 200;
        Module root = Llama405B.build();
        Map<Device, Long> budgets = new LinkedHashMap<>();
        for (int i = 0; i < 8; i++) {
            budgets.put(Device.accelerator(i), 80L << 30);
        }
        budgets.put(Device.cpu(), 100L << 30);
        PlanRequest request = PlanRequest.of(budgets).withNoSplit("LlamaDecoderLayer");
        DevicePlanner planner = new DevicePlanner();
        long cold = System.nanoTime();
        int keys = planner.plan(root, request).deviceMap().entries().size();
        cold = System.nanoTime() - cold;
        for (int i = 0; i < 2_000; i++) { // warm-up: let the JIT compile the planner
            keys += planner.plan(root, request).deviceMap().entries().size();
        }
        long[] nanos = new long[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            keys += planner.plan(root, request).deviceMap().entries().size();
            nanos[i] = System.nanoTime() - t0;
        }
        Arrays.sort(nanos);
        System.out.printf("planned %d modules over %d devices: median %.3f ms, min %.3f ms, p90 %.3f ms over %d runs"
                        + "; first (cold) plan %.1f ms; %d keys%n",
                root.modules().size(), budgets.size() + 1, nanos[runs / 2] / 1e6, nanos[0] / 1e6,
                nanos[runs * 9 / 10] / 1e6, runs, cold / 1e6, keys / (2_001 + runs));
    }
}
