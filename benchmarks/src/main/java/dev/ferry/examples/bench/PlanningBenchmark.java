package dev.ferry.examples.bench;

import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DevicePlanner;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
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
 * Planning Llama 3.1 405B (its config.json: 126 layers, hidden 16384; the family's tree on meta, 1,645 modules,
 * sized in bfloat16 as the checkpoint ships) over 8 × 80 GiB accelerators + 100 GiB cpu + disk with no-split
 * LlamaDecoderLayer; goal ≤ 10 ms. Formerly core's {@code PlannerBenchmark}
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

    /** Llama 3.1 405B's config.json, as published. */
    static final String CONFIG_405B = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
            + "\"hidden_size\": 16384, \"intermediate_size\": 53248, \"num_hidden_layers\": 126, "
            + "\"num_attention_heads\": 128, \"num_key_value_heads\": 8, \"vocab_size\": 128256, "
            + "\"max_position_embeddings\": 131072, \"rms_norm_eps\": 1e-05, \"rope_theta\": 500000.0, "
            + "\"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
            + "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}, "
            + "\"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\", \"bos_token_id\": 128000, "
            + "\"eos_token_id\": 128001}";

    @Setup
    public void setUp() {
        try (DjlBackend backend = new DjlBackend()) {
            root = ModelFamilies.build(ModelConfig.parse(CONFIG_405B), backend);
        }
        if (root.modules().size() != 1645) {
            throw new IllegalStateException("expected 1,645 modules, built " + root.modules().size());
        }
        Map<Device, Long> budgets = new LinkedHashMap<>();
        for (int i = 0; i < 8; i++) {
            budgets.put(Device.accelerator(i), 80L << 30);
        }
        budgets.put(Device.cpu(), 100L << 30);
        request = PlanRequest.of(budgets).withNoSplit("LlamaDecoderLayer").withDtype(DType.BFLOAT16);
        planner = new DevicePlanner();
    }

    @Benchmark
    public Object plan405B() {
        return planner.plan(root, request).deviceMap();
    }
}
