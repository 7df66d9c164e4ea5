package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.OffloadFolder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Offloaded ONNX partitions read their initializers through the core's WeightsStore, Accelerate folders included. */
class OnnxWeightsTest {

    @TempDir
    Path tmp;

    @Test
    void transposeTurnsRowsIntoColumns() {
        ByteBuffer src = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 6; i++) {
            src.putInt(i);
        }
        src.flip();

        ByteBuffer t = OnnxWeights.transpose(src, 2, 3, 4);

        int[] out = new int[6];
        for (int i = 0; i < 6; i++) {
            out[i] = t.getInt(i * 4);
        }
        assertThat(out).containsExactly(0, 3, 1, 4, 2, 5);
    }

    /** An Accelerate-style folder (module tensor names, PyTorch layout) of layer 3 of all-MiniLM-L6-v2. */
    private OffloadFolder accelerateFolderOfLayer3(OnnxModuleTree tree) {
        OnnxWeights model = new OnnxWeights(tree, null);
        Map<String, TensorSpec> expected = new LinkedHashMap<>();
        Map<String, ByteBuffer> bytes = new LinkedHashMap<>();
        tree.tensorSources().forEach((name, src) -> {
            if (!name.startsWith("encoder.layer.3.") || !model.contains(src.initializer())) {
                return;
            }
            TensorSpec s = model.spec(src.initializer());
            ByteBuffer b = model.bytes(src.initializer());
            if (src.transposed()) {
                long[] d = s.shape();
                b = OnnxWeights.transpose(b, (int) d[0], (int) d[1], s.dtype().byteSize());
                s = TensorSpec.of(s.dtype(), d[1], d[0]);
            }
            expected.put(name, s);
            bytes.put(name, b);
        });
        return OffloadFolder.openFor(tmp.resolve("offload"), expected, null, false, w -> {
            w.plan(expected.keySet());
            expected.forEach((n, s) -> w.put(n, s, bytes.get(n)));
        }).folder();
    }

    @Test
    void anAccelerateOffloadFolderFeedsADiskOffloadedLayer() throws OrtException {
        Path file = TestModels.minilm();
        OnnxModel onnx = OnnxModel.load(file);
        OnnxModuleTree tree = OnnxModuleTree.build(onnx);
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("embeddings", Device.cpu());
        map.put("encoder", Device.cpu());
        map.put("encoder.layer.3", Device.disk());
        map.put("pooler", Device.cpu());
        try (OffloadFolder folder = accelerateFolderOfLayer3(tree);
             OnnxTensor ids = MiniLmEmbeddingTest.tensor(MiniLmEmbeddingTest.IDS);
             OnnxTensor mask = MiniLmEmbeddingTest.tensor(MiniLmEmbeddingTest.MASK);
             OnnxTensor types = MiniLmEmbeddingTest.tensor(new long[2][11]);
             OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(tree, DeviceMap.of(map), PreloadRule.none(),
                     CausalLmFidelityTest.OPTIONS.withDiskStore(folder))) {
            Map<String, OnnxTensor> in = Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids", types);
            OnnxWeights weights = new OnnxWeights(tree, folder);
            String queryWeight = tree.tensorSources().get("encoder.layer.3.attention.self.query.weight").initializer();

            float[] hidden;
            try (OnnxRunResult r = d.run(in)) {
                hidden = r.floats("last_hidden_state");
            }

            assertThat(weights.fromOffloadStore(queryWeight)).isTrue();
            assertThat(Ort.maxAbsDiff(hidden, Ort.whole(file, in, "last_hidden_state"))).isLessThanOrEqualTo(1e-5);
        }
    }
}
