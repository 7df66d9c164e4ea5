package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Where an export takes an {@code attention_mask} and a dynamic batch axis (all-MiniLM-L6-v2), a padded, masked batch
 * runs as one: each sentence's embedding equals the sentence run alone. (The causal-LM fixtures' exports take
 * {@code input_ids [1, seq]} only, so their batches can only run row by row.)
 */
class BatchedEmbeddingTest {

    @Test
    void aPaddedBatchGivesEachSentenceTheEmbeddingItHasAlone() throws OrtException {
        Map<String, Device> cpu = Map.of("", Device.cpu());
        try (OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(OnnxModel.load(TestModels.minilm()),
                DeviceMap.of(cpu), PreloadRule.none(), CausalLmFidelityTest.OPTIONS)) {
            float[][] batch = embed(d, MiniLmEmbeddingTest.IDS, MiniLmEmbeddingTest.MASK);

            for (int row = 0; row < 2; row++) {
                int len = (int) Arrays.stream(MiniLmEmbeddingTest.MASK[row]).sum();
                long[][] ids = {Arrays.copyOf(MiniLmEmbeddingTest.IDS[row], len)};
                long[][] mask = {Arrays.copyOf(MiniLmEmbeddingTest.MASK[row], len)};
                float[] alone = embed(d, ids, mask)[0];
                assertThat(Ort.maxAbsDiff(batch[row], alone)).as("row %d", row).isLessThanOrEqualTo(1e-5);
            }
        }
    }

    private static float[][] embed(OnnxDispatchedModel d, long[][] ids, long[][] mask) throws OrtException {
        try (OnnxTensor i = MiniLmEmbeddingTest.tensor(ids); OnnxTensor m = MiniLmEmbeddingTest.tensor(mask);
             OnnxTensor t = MiniLmEmbeddingTest.tensor(new long[ids.length][ids[0].length]);
             OnnxRunResult r = d.run(Map.of("input_ids", i, "attention_mask", m, "token_type_ids", t))) {
            return MiniLmEmbeddingTest.meanPool(r.floats("last_hidden_state"), mask, 384);
        }
    }
}
