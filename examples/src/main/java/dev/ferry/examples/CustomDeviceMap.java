package dev.ferry.examples;

import com.google.inject.Guice;
import com.google.inject.Injector;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.inject.FerryCoreModule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.examples.demo.EmbeddedModel;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.PyTorchBackendModule;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A device map written by hand, in Accelerate's JSON form (the same file works with {@code ferry generate
 * --device-map} and with Accelerate's {@code device_map=}): the embeddings, the first two decoder layers and the
 * head resident on the CPU, the last two layers and the final norm offloaded to disk (streamed from the
 * memory-mapped checkpoint at each forward). Keys are module names; a module not named follows its longest named
 * prefix. With a GPU, write {@code 0} instead of {@code "cpu"} for resident blocks, and {@code "cpu"} then means
 * CPU offload.
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
        Injector injector = Guice.createInjector(new FerryCoreModule(), new PyTorchBackendModule());
        DjlBackend backend = injector.getInstance(DjlBackend.class);
        DeviceMap map = DeviceMap.parseJson(MAP);                    // or DeviceMap.readJson(Path.of("map.json"))
        CausalLM model = ModelFamilies.build(modelDir, backend);
        CheckpointDispatcher.Result loaded = injector.getInstance(CheckpointDispatcher.class)
                .loadAndDispatch(model, SafetensorsCheckpoint.open(modelDir), CheckpointDispatcher.Options.of(map));
        System.out.printf("resident: %s, left on disk: %d bytes%n", loaded.bytesPerDevice(), loaded.diskOffloadBytes());
        System.out.print(loaded.report().toTable());
        long[] tokens = new Generator(model, backend, map.mainDevice())
                .generate(new long[] {1, 17, 42, 99, 3, 250, 7, 128}, GenerationConfig.greedy(8));
        System.out.println("new tokens: " + Arrays.toString(tokens));
        return tokens;
    }

    public static void main(String[] args) {
        run(args.length > 0 ? Path.of(args[0]) : EmbeddedModel.extract());
    }
}
