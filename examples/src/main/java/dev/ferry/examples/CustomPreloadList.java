package dev.ferry.examples;

import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.examples.demo.EmbeddedModel;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A preload list and the report that shows its effect. Without preload classes every module that owns weights
 * carries its own hook: an offloaded decoder layer is fetched projection by projection, 12 hooks per layer. With
 * {@code LlamaDecoderLayer} as a preload class (the default for Llama models; named here to show it), a layer is one
 * unit: its whole subtree is fetched at once by one hook on the layer, and nothing below it is hooked, whether the
 * layer is resident or offloaded. Both dispatches generate the same tokens.
 *
 * <p>Run: {@code java -cp examples/target/ferry.jar dev.ferry.examples.CustomPreloadList [MODEL_DIR]}.
 */
public final class CustomPreloadList {

    static final String PRELOAD = "LlamaDecoderLayer";

    static final String MAP = """
            {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu",
             "model.layers.1": "disk", "model.layers.2": "disk", "model.layers.3": "disk",
             "model.norm": "cpu", "lm_head": "cpu"}""";

    private CustomPreloadList() {
    }

    /** Prints both reports and returns the tokens generated with the preload list. */
    public static long[] run(Path modelDir) {
        long[] prompt = {1, 17, 42, 99, 3, 250, 7, 128};
        try (DispatchedModel without = Ferry.model(modelDir).deviceMap(MAP).noPreload().load()) {
            System.out.printf("without preload classes: %d hooks%n", without.report().hookedCount());
            without.generate(prompt, GenerationConfig.greedy(8));
        }
        try (DispatchedModel model = Ferry.model(modelDir).deviceMap(MAP).preload(PRELOAD).load()) {
            DispatchReport with = model.report();
            System.out.printf("with [%s]: %d hooks on %s%n%n", PRELOAD, with.hookedCount(), with.hookedModules());
            System.out.print(with.toTable());
            long[] tokens = model.generate(prompt, GenerationConfig.greedy(8));
            System.out.println("new tokens: " + Arrays.toString(tokens));
            return tokens;
        }
    }

    public static void main(String[] args) {
        run(args.length > 0 ? Path.of(args[0]) : EmbeddedModel.extract());
    }
}
