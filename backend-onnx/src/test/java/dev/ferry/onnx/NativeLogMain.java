package dev.ferry.onnx;

import ai.onnxruntime.OnnxTensor;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * Run in a child JVM by {@link NativeLogTest}: dispatches tiny-llama's ONNX export and runs it on token id 999 of a
 * 256-token vocabulary, which ONNX Runtime itself rejects (nothing in Java checks ids at this level). Prints the
 * Java exception's message on stdout; whatever ONNX Runtime logs natively goes to the process's stderr.
 */
public final class NativeLogMain {

    private NativeLogMain() {
    }

    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[0]);
        try (OnnxTensor in = Ort.ids(new long[] {1, 2, 999});
             OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(OnnxModel.load(file),
                     DeviceMap.of(Map.of("", Device.cpu())), new PreloadRule(Set.of()), OnnxOptions.defaults());
             OnnxRunResult r = d.run(Map.of("input_ids", in))) {
            System.out.println("ran: " + r.floats("logits").length);
        } catch (RuntimeException e) {
            System.out.println("error: " + e.getMessage());
        }
    }
}
