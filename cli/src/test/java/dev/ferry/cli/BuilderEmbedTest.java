package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code DispatchedModel.embed} through the builder: an ONNX encoder (all-MiniLM-L6-v2) and the PyTorch causal LM. */
class BuilderEmbedTest {

    @TempDir
    Path tmp;

    private Path miniLm() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("minilm"));
        for (String[] r : new String[][] {{"/all-minilm-l6-v2.onnx", "model.onnx"},
                {"/all-minilm-l6-v2-tokenizer.json", "tokenizer.json"}}) {
            try (InputStream in = BuilderEmbedTest.class.getResourceAsStream(r[0])) {
                assertThat(in).as(r[0]).isNotNull();
                Files.copy(in, dir.resolve(r[1]));
            }
        }
        return dir;
    }

    private static float[] normalized(float[] v) {
        double n = 0;
        for (float x : v) {
            n += (double) x * x;
        }
        float[] out = new float[v.length];
        for (int k = 0; k < v.length; k++) {
            out[k] = (float) (v[k] / Math.sqrt(n));
        }
        return out;
    }

    @Test
    void anOnnxEncoderWithEveryLayerOnDiskEmbedsAsFerryEmbedDoesWhole() throws IOException {
        Path dir = miniLm();
        float[][] whole = EmbedCommandTest.embed(dir);
        Map<String, String> map = new LinkedHashMap<>();
        map.put("embeddings", "cpu");
        for (int i = 0; i < 6; i++) {
            map.put("encoder.layer." + i, "disk");
        }
        map.put("pooler", "cpu");
        try (DispatchedModel model = Ferry.model(dir).deviceMap(map).backend("onnx").load()) {
            float[][] e = model.embed(new long[][] {{101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 102},
                    {101, 7592, 2088, 102}});
            assertThat(model.report().entry("encoder.layer.5").storage()).isEqualTo(Device.disk());
            assertThat(e).hasNumberOfRows(2);
            for (int r = 0; r < 2; r++) {
                float[] n = normalized(e[r]);
                assertThat(n).hasSize(384);
                for (int k = 0; k < n.length; k++) {
                    assertThat(n[k]).isCloseTo(whole[r][k], org.assertj.core.data.Offset.offset(1e-5f));
                }
            }
        }
    }

    @Test
    void aCausalLmExportOnOnnxSaysEmbedIsNotItsTask() {
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).backend("onnx").load()) {
            assertThatThrownBy(() -> model.embed(new long[][] {{1, 2}}))
                    .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining("logits");
        }
    }

    @Test
    void theCausalLmOnPyTorchEmbedsEachRowAsItWouldAlone() {
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).backend("pytorch").load()) {
            float[][] batch = model.embed(new long[][] {{1, 17, 42, 99}, {5, 6}});
            float[][] alone = model.embed(new long[][] {{5, 6}});
            assertThat(batch[0]).hasSize(64);
            for (int k = 0; k < 64; k++) {
                assertThat(batch[1][k]).isCloseTo(alone[0][k], org.assertj.core.data.Offset.offset(1e-5f));
            }
        }
    }
}
