package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tiny-bert fixture's int8 export (onnxruntime {@code quantize_dynamic}) with every layer on disk equals
 * onnxruntime's whole-graph run at its default optimisation level (the fixture's golden), and the split equals the
 * whole at no optimisation too.
 */
class QuantizedSplitEmbedTest {

    private static final String DISK = "{\"embeddings\": \"cpu\", \"encoder.layer.0\": \"disk\", "
            + "\"encoder.layer.1\": \"disk\", \"encoder.layer.2\": \"disk\", \"encoder.layer.3\": \"disk\"}";

    @TempDir
    Path tmp;

    private Path int8Folder() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("tiny-bert-int8"));
        Files.copy(Cli.fixtures().resolve("tiny-bert/model.int8.onnx"), dir.resolve("model.onnx"));
        Files.copy(Cli.fixtures().resolve("tiny-bert/tokenizer.json"), dir.resolve("tokenizer.json"));
        return dir;
    }

    private static float[][] embed(Path dir, String level, String... map) {
        String[] base = {"embed", "--model", dir.toString(), "--input-ids", "1,17,42,99,3,250,7,128", "--input-ids",
                "5,6,7", "--optimization", level};
        String[] args = java.util.Arrays.copyOf(base, base.length + map.length);
        System.arraycopy(map, 0, args, base.length, map.length);
        Cli r = Cli.run(args);
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
    void everyLayerOnDiskEqualsOnnxRuntimesWholeRunAtItsDefaultLevel() throws IOException {
        float[][] split = embed(int8Folder(), "ALL_OPT", "--device-map", DISK);
        assertClose(split, EmbedCommandTest.vectors(Cli.golden("tiny-bert").get("ort_mean_pooled_model_int8")), 1e-5);
    }

    @Test
    void everyLayerOnDiskEqualsTheWholeRunWithoutOptimisation() throws IOException {
        Path dir = int8Folder();
        assertClose(embed(dir, "NO_OPT", "--device-map", DISK), embed(dir, "NO_OPT"), 1e-6);
    }
}
