package dev.ferry.examples;

import com.google.inject.Guice;
import com.google.inject.Injector;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.inject.FerryCoreModule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.DevicePlanner;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.Device;
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
import java.util.Map;

/**
 * Dispatching a model in ten lines of Java: Guice wires the core and a backend; the model is built on meta from
 * {@code config.json}, a device map is planned under a 400 KiB CPU budget (the rest goes to disk), the checkpoint
 * is loaded straight to where each block lives, and the dispatched model generates.
 *
 * <p>Run: {@code java -cp examples/target/ferry.jar dev.ferry.examples.DispatchWithGuice [MODEL_DIR]} (default:
 * the tiny-llama shipped in the jar).
 */
public final class DispatchWithGuice {

    private DispatchWithGuice() {
    }

    public static long[] run(Path modelDir) {
        Injector injector = Guice.createInjector(new FerryCoreModule(), new PyTorchBackendModule());
        DjlBackend backend = injector.getInstance(DjlBackend.class);
        CausalLM model = ModelFamilies.build(modelDir, backend);                  // on meta: no weight read yet
        DeviceMap map = injector.getInstance(DevicePlanner.class).plan(model,
                PlanRequest.of(Map.of(Device.cpu(), SizeStrings.parse("400KiB"))).withNoSplit("LlamaDecoderLayer"))
                .deviceMap();
        injector.getInstance(CheckpointDispatcher.class)
                .loadAndDispatch(model, SafetensorsCheckpoint.open(modelDir), CheckpointDispatcher.Options.of(map));
        long[] tokens = new Generator(model, backend, map.mainDevice())
                .generate(new long[] {1, 17, 42, 99, 3, 250, 7, 128}, GenerationConfig.greedy(8));
        System.out.println("device map: " + map + "\nnew tokens: " + Arrays.toString(tokens));
        return tokens;
    }

    public static void main(String[] args) {
        run(args.length > 0 ? Path.of(args[0]) : EmbeddedModel.extract());
    }
}
