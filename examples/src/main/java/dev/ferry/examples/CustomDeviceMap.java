package dev.ferry.examples;

import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.examples.demo.EmbeddedModel;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A device map written by hand, in Accelerate's JSON form (the same file works with {@code ferry generate
 * --device-map} and with Accelerate's {@code device_map=}): the embeddings, the first two decoder layers and the
 * head resident on the CPU, the last two layers and the final norm offloaded to disk (streamed from the
 * memory-mapped checkpoint at each forward). Keys are module names; a module not named follows its longest named
 * prefix. With a GPU, write {@code 0} instead of {@code "cpu"} for resident blocks, and {@code "cpu"} then means
 * CPU offload. The map is given once; {@code .deviceMap(Map.of(...))} takes the same as a Java map.
 *
 * <p>Run: {@code java -cp examples/target/ferry.jar dev.ferry.examples.CustomDeviceMap [MODEL_DIR]}.
 */
public final class CustomDeviceMap {

    static final String MAP = """
            {
              "model.embed_tokens": "cpu",
              "model.rotary_emb": "cpu",
              "model.layers.0": "cpu",
              "model.layers.1": "cpu",
              "model.layers.2": "disk",
              "model.layers.3": "disk",
              "model.norm": "disk",
              "lm_head": "cpu"
            }""";

    private CustomDeviceMap() {
    }

    public static long[] run(Path modelDir) {
        try (DispatchedModel model = Ferry.model(modelDir).deviceMap(MAP).load()) {
            System.out.println(model.report().memory().describe());
            System.out.print(model.report().toTable());
            long[] tokens = model.generate(new long[] {1, 17, 42, 99, 3, 250, 7, 128}, GenerationConfig.greedy(8));
            System.out.println("new tokens: " + Arrays.toString(tokens));
            return tokens;
        }
    }

    public static void main(String[] args) {
        run(args.length > 0 ? Path.of(args[0]) : EmbeddedModel.extract());
    }
}
