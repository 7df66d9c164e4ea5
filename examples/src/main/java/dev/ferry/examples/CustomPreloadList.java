package dev.ferry.examples;

import com.google.inject.Guice;
import com.google.inject.Injector;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.dispatch.PreloadRule;
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
import java.util.Set;

/**
 * A preload list and the report that shows its effect. Without preload classes every module that owns weights
 * carries its own hook: an offloaded decoder layer is fetched projection by projection, 12 hooks per layer. With
 * {@code LlamaDecoderLayer} as a preload class, a layer is one unit: its whole subtree is fetched at once by one
 * hook on the layer, and nothing below it is hooked, whether the layer is resident or offloaded. The plan is
 * computed with {@link Dispatcher#plan}, which needs no device and reads no weight; then the model is dispatched
 * with the preload list and generates the same tokens.
 *
 * <p>Run: {@code java -cp examples/target/ferry.jar dev.ferry.examples.CustomPreloadList [MODEL_DIR]}.
 */
public final class CustomPreloadList {

    static final Set<String> PRELOAD = Set.of("LlamaDecoderLayer");

    private CustomPreloadList() {
    }

    /** Prints both reports and returns the tokens generated with the preload list. */
    public static long[] run(Path modelDir) {
        Injector injector = Guice.createInjector(new FerryCoreModule(), new PyTorchBackendModule());
        DjlBackend backend = injector.getInstance(DjlBackend.class);
        CausalLM model = ModelFamilies.build(modelDir, backend);
        DeviceMap map = DeviceMap.parseJson("""
                {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu",
                 "model.layers.1": "disk", "model.layers.2": "disk", "model.layers.3": "disk",
                 "model.norm": "cpu", "lm_head": "cpu"}""");

        DispatchReport without = Dispatcher.plan(model, map, PreloadRule.none()).report();
        DispatchReport with = Dispatcher.plan(model, map, new PreloadRule(PRELOAD)).report();
        System.out.printf("without preload classes: %d hooks%n", without.hookedCount());
        System.out.printf("with %s: %d hooks on %s%n%n", PRELOAD, with.hookedCount(), with.hookedModules());
        System.out.print(with.toTable());

        DispatchOptions options = DispatchOptions.of(map).withPreloadClasses(PRELOAD);
        injector.getInstance(CheckpointDispatcher.class).loadAndDispatch(model, SafetensorsCheckpoint.open(modelDir),
                CheckpointDispatcher.Options.of(map).withDispatch(options));
        long[] tokens = new Generator(model, backend, map.mainDevice())
                .generate(new long[] {1, 17, 42, 99, 3, 250, 7, 128}, GenerationConfig.greedy(8));
        System.out.println("new tokens: " + Arrays.toString(tokens));
        return tokens;
    }

    public static void main(String[] args) {
        run(args.length > 0 ? Path.of(args[0]) : EmbeddedModel.extract());
    }
}
