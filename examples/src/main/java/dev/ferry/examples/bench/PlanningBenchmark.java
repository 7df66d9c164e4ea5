package dev.ferry.examples.bench;

import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DevicePlanner;
import dev.ferry.core.placement.Llama405B;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.tensor.Device;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Planning the 405B-shaped tree (1,645 modules, core's test {@code Llama405B}) over 8 × 80 GiB accelerators +
 * 100 GiB cpu + disk with no-split LlamaDecoderLayer; goal ≤ 10 ms. Formerly core's {@code PlannerBenchmark}
 * main. Run: {@code java -cp "examples/target/ferry.jar:examples/target/lib/*" org.openjdk.jmh.Main
 * PlanningBenchmark}; the single-shot mode gives the cold first plan.
 */
@State(Scope.Benchmark)
@BenchmarkMode({Mode.AverageTime, Mode.SingleShotTime})
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class PlanningBenchmark {

    private Module root;
    private PlanRequest request;
    private DevicePlanner planner;

    @Setup
    public void setUp() {
        root = Llama405B.build();
        Map<Device, Long> budgets = new LinkedHashMap<>();
        for (int i = 0; i < 8; i++) {
            budgets.put(Device.accelerator(i), 80L << 30);
        }
        budgets.put(Device.cpu(), 100L << 30);
        request = PlanRequest.of(budgets).withNoSplit("LlamaDecoderLayer");
        planner = new DevicePlanner();
    }

    @Benchmark
    public Object plan405B() {
        return planner.plan(root, request).deviceMap();
    }
}
