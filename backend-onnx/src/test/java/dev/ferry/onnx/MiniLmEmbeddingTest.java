package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * all-MiniLM-L6-v2 (an older export nobody here made, no scope metadata): blocks = the six encoder layers,
 * some offloaded; sentence embeddings (mean pooling of last_hidden_state under the attention mask, as
 * sentence-transformers does) equal the whole model's.
 */
class MiniLmEmbeddingTest {

    // "[CLS] the quick brown fox jumps over the lazy dog [SEP]" and a shorter sentence padded to the same length
    static final long[][] IDS = {
            {101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 102},
            {101, 7592, 2088, 102, 0, 0, 0, 0, 0, 0, 0}};
    static final long[][] MASK = {
            {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
            {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0}};

    @ParameterizedTest(name = "prefetch={0}")
    @ValueSource(ints = {0, 1})
    void partitionedEmbeddingsEqualWholeModel(int prefetch) throws OrtException {
        Path file = TestModels.minilm();
        Device gpu0 = Device.accelerator(0);
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("embeddings", gpu0);
        map.put("encoder.layer.0", gpu0);
        map.put("encoder.layer.1", Device.cpu());
        map.put("encoder.layer.2", gpu0);
        map.put("encoder.layer.3", Device.disk());
        map.put("encoder.layer.4", Device.disk());
        map.put("encoder.layer.5", gpu0);
        try (OnnxTensor ids = tensor(IDS); OnnxTensor mask = tensor(MASK); OnnxTensor types = tensor(new long[2][11]);
             OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(OnnxModel.load(file),
                     DeviceMap.of(map), PreloadRule.none(),
                     CausalLmFidelityTest.OPTIONS.withPrefetchPartitions(prefetch))) {
            Map<String, OnnxTensor> in = Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids", types);
            float[] whole = Ort.whole(file, in, "last_hidden_state");
            float[] hidden;
            try (OnnxRunResult r = d.run(in)) {
                hidden = r.floats("last_hidden_state");
            }
            float[][] eWhole = meanPool(whole, MASK, 384);
            float[][] ePart = meanPool(hidden, MASK, 384);
            double diff = 0;
            for (int b = 0; b < 2; b++) {
                diff = Math.max(diff, Ort.maxAbsDiff(eWhole[b], ePart[b]));
            }
            OnnxDispatchReport report = d.report();
            System.out.printf("all-MiniLM-L6-v2 prefetch=%d: max |partitioned - whole| sentence embedding = %.3g, "
                    + "hidden = %.3g%n%s", prefetch, diff, Ort.maxAbsDiff(whole, hidden), report);
            assertThat(diff).isLessThanOrEqualTo(1e-5);
            // the attention-mask arithmetic at the root belongs to no block: it went to the first layer using it
            assertThat(d.partitions()).extracting(Partition::block).doesNotContainNull();
            assertThat(report.partitions()).filteredOn(PartitionReport::offloaded).isNotEmpty();
            // the offloaded layers are split per Linear / LayerNorm (no preload classes: classes are unknown)
            assertThat(report.sessionCount()).isGreaterThan(7);
        }
    }

    static OnnxTensor tensor(long[][] v) throws OrtException {
        long[] flat = new long[v.length * v[0].length];
        for (int i = 0; i < v.length; i++) {
            System.arraycopy(v[i], 0, flat, i * v[0].length, v[0].length);
        }
        return OnnxTensor.createTensor(Ort.ENV, LongBuffer.wrap(flat), new long[] {v.length, v[0].length});
    }

    /** sentence-transformers' mean pooling: sum of token vectors under the mask / number of tokens. */
    static float[][] meanPool(float[] hidden, long[][] mask, int dim) {
        int batch = mask.length;
        int seq = mask[0].length;
        float[][] out = new float[batch][dim];
        for (int b = 0; b < batch; b++) {
            double n = 0;
            double[] sum = new double[dim];
            for (int t = 0; t < seq; t++) {
                if (mask[b][t] == 0) {
                    continue;
                }
                n++;
                for (int k = 0; k < dim; k++) {
                    sum[k] += hidden[(b * seq + t) * dim + k];
                }
            }
            for (int k = 0; k < dim; k++) {
                out[b][k] = (float) (sum[k] / Math.max(n, 1e-9));
            }
        }
        return out;
    }
}
