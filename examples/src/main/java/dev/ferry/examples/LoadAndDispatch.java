package dev.ferry.examples;

import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.examples.demo.EmbeddedModel;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Loading a model dispatched over the devices in one call (Accelerate's {@code load_checkpoint_and_dispatch}): the
 * device map is planned ({@code auto}) under a 400 KiB CPU budget, so the decoder layers that do not fit go to disk
 * and stream from the memory-mapped checkpoint at each forward; the checkpoint is loaded straight to where each block
 * lives, and the dispatched model generates. The backend is whichever is on the class path (here both are; the
 * folder's config.json picks PyTorch; {@code .backend("onnx")} runs the folder's model.onnx the same way).
 *
 * <p>Run: {@code java -cp examples/target/ferry.jar dev.ferry.examples.LoadAndDispatch [MODEL_DIR]} (default:
 * the tiny-llama shipped in the jar).
 */
public final class LoadAndDispatch {

    private LoadAndDispatch() {
    }

    public static long[] run(Path modelDir) {
        try (DispatchedModel model = Ferry.model(modelDir).deviceMap("auto").maxMemory("cpu=400KiB").load()) {
            long[] tokens = model.generate(new long[] {1, 17, 42, 99, 3, 250, 7, 128}, GenerationConfig.greedy(8));
            System.out.println("device map: " + model.deviceMap() + "\nnew tokens: " + Arrays.toString(tokens));
            return tokens;
        }
    }

    public static void main(String[] args) {
        run(args.length > 0 ? Path.of(args[0]) : EmbeddedModel.extract());
    }
}
