package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * {@code ferry embed} gives embeddings or refuses: a causal-LM ONNX export (logits) is refused as the builder refuses
 * it, a checkpoint is embedded on PyTorch as {@code DispatchedModel.embed} does, and the tiny-bert encoder fixture
 * equals transformers' mean-pooled hidden states.
 */
class HonestEmbedTest {

    private static final String ROW_1 = "1,17,42,99,3,250,7,128";
    private static final String ROW_2 = "5,6,7";

    private static float[][] embeddings(Cli r) {
        assertThat(r.exitCode()).as(r.toString()).isZero();
        return EmbedCommandTest.vectors(r.json().get("embeddings"));
    }

    private static void assertClose(float[][] actual, float[][] expected, double tolerance) {
        assertThat(actual).hasDimensions(expected.length, expected[0].length);
        for (int b = 0; b < expected.length; b++) {
            for (int k = 0; k < expected[b].length; k++) {
                assertThat((double) actual[b][k]).as("row %d, dim %d", b, k).isCloseTo(expected[b][k],
                        within(tolerance));
            }
        }
    }

    @Test
    void aCausalLmOnnxExportIsRefusedOnOnnx() {
        Cli r = Cli.run("embed", "--model", Cli.model("tiny-llama"), "--backend", "onnx", "--input-ids", ROW_1);
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.out()).isEmpty();
        assertThat(r.err()).contains("model.onnx is a causal-LM export (its output is logits, not hidden states)",
                "--backend pytorch");
    }

    @Test
    void aCheckpointIsEmbeddedOnPyTorchAsTheBuildersEmbedDoes() {
        float[][] cli = embeddings(Cli.run("embed", "--model", Cli.model("tiny-llama"), "--input-ids", ROW_1,
                "--input-ids", ROW_2));
        float[][] api;
        try (DispatchedModel m = Ferry.model(Path.of(Cli.model("tiny-llama"))).backend("pytorch").load()) {
            api = m.embed(new long[][] {{1, 17, 42, 99, 3, 250, 7, 128}, {5, 6, 7}});
        }
        assertThat(cli[0]).hasSize(64); // hidden_size, not the 256 of the vocabulary's logits
        assertClose(cli, api, 1e-6);
    }

    @Test
    void onPyTorchWithLayersOnDiskTheEmbeddingEqualsTheResidentOne() {
        String map = "{\"model.embed_tokens\": \"cpu\", \"model.layers.0\": \"cpu\", \"model.layers.1\": \"disk\", "
                + "\"model.layers.2\": \"disk\", \"model.layers.3\": \"disk\", \"model.norm\": \"disk\", "
                + "\"model.rotary_emb\": \"cpu\", \"lm_head\": \"disk\"}";
        float[][] resident = embeddings(Cli.run("embed", "--model", Cli.model("tiny-llama"), "--backend", "pytorch",
                "--input-ids", ROW_1, "--input-ids", ROW_2));
        float[][] offloaded = embeddings(Cli.run("embed", "--model", Cli.model("tiny-llama"), "--backend", "pytorch",
                "--device-map", map, "--input-ids", ROW_1, "--input-ids", ROW_2));
        assertClose(offloaded, resident, 1e-5);
    }

    @Test
    void clsPoolingOnPyTorchIsUsage() {
        Cli r = Cli.run("embed", "--model", Cli.model("tiny-llama"), "--backend", "pytorch", "--pooling", "cls",
                "--input-ids", ROW_1);
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("--pooling cls");
    }

    @Test
    void theTinyBertEncoderEqualsTransformersMeanPooledHiddenStates() {
        float[][] cli = embeddings(Cli.run("embed", "--model", Cli.model("tiny-bert"), "--input-ids", ROW_1,
                "--input-ids", ROW_2));
        assertClose(cli, golden("mean_pooled"), 1e-5);
    }

    @Test
    void theTinyBertEncoderWithEveryLayerOnDiskEqualsTheWholeRun() {
        String map = "{\"embeddings\": \"cpu\", \"encoder.layer.0\": \"disk\", \"encoder.layer.1\": \"disk\", "
                + "\"encoder.layer.2\": \"disk\", \"encoder.layer.3\": \"disk\"}";
        float[][] split = embeddings(Cli.run("embed", "--model", Cli.model("tiny-bert"), "--device-map", map,
                "--input-ids", ROW_1, "--input-ids", ROW_2));
        assertClose(split, golden("ort_mean_pooled_model"), 1e-5);
    }

    private static float[][] golden(String key) {
        JsonNode g = Cli.golden("tiny-bert");
        assertThat(Cli.longs(g.get("input_ids").get(0))).containsExactly(1, 17, 42, 99, 3, 250, 7, 128);
        assertThat(Cli.longs(g.get("input_ids").get(1))).startsWith(5, 6, 7);
        assertThat(Cli.longs(g.get("attention_mask").get(1))).containsExactly(1, 1, 1, 0, 0, 0, 0, 0);
        return EmbedCommandTest.vectors(g.get(key));
    }
}
