package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry embed} on all-MiniLM-L6-v2 and its int8 sibling (langchain4j's jars): whole, every layer on disk and a
 * mixed map, against a plain ONNX Runtime run of the same file.
 */
class EmbedCommandTest {

    // "[CLS] the quick brown fox jumps over the lazy dog [SEP]" and "[CLS] hello world [SEP]"
    static final long[][] IDS = {{101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 102},
            {101, 7592, 2088, 102, 0, 0, 0, 0, 0, 0, 0}};
    static final int[] LENGTHS = {11, 4};

    @TempDir
    static Path tmp;
    static Path floatDir;
    static Path int8Dir;

    @BeforeAll
    static void folders() throws IOException {
        floatDir = folder("float", "all-minilm-l6-v2");
        int8Dir = folder("int8", "all-minilm-l6-v2-q");
    }

    static Path folder(String name, String resource) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve(name));
        copy("/" + resource + ".onnx", dir.resolve("model.onnx"));
        copy("/" + resource + "-tokenizer.json", dir.resolve("tokenizer.json"));
        return dir;
    }

    static void copy(String resource, Path to) throws IOException {
        try (InputStream in = EmbedCommandTest.class.getResourceAsStream(resource)) {
            assertThat(in).as(resource + " on the test class path").isNotNull();
            Files.copy(in, to);
        }
    }

    static Path map(String name, Device... layers) throws IOException {
        StringBuilder sb = new StringBuilder("{\"embeddings\": \"cpu\"");
        for (int i = 0; i < layers.length; i++) {
            sb.append(", \"encoder.layer.").append(i).append("\": \"").append(layers[i].name).append('"');
        }
        sb.append(", \"pooler\": \"cpu\"}");
        return Files.writeString(tmp.resolve(name + ".json"), sb.toString());
    }

    enum Device {
        CPU("cpu"), DISK("disk");

        final String name;

        Device(String name) {
            this.name = name;
        }
    }

    static float[][] embed(Path dir, String... extra) {
        String[] base = {"embed", "--model", dir.toString(), "--input-ids", "101,1996,4248,2829,4419,14523,2058,1996,"
                + "13971,3899,102", "--input-ids", "101,7592,2088,102", "--normalize", "--format", "json"};
        String[] args = new String[base.length + extra.length];
        System.arraycopy(base, 0, args, 0, base.length);
        System.arraycopy(extra, 0, args, base.length, extra.length);
        Cli r = Cli.run(args);
        assertThat(r.exitCode()).as(r.toString()).isZero();
        return vectors(r.json().get("embeddings"));
    }

    static float[][] vectors(JsonNode arrays) {
        float[][] out = new float[arrays.size()][];
        for (int b = 0; b < out.length; b++) {
            out[b] = new float[arrays.get(b).size()];
            for (int k = 0; k < out[b].length; k++) {
                out[b][k] = (float) arrays.get(b).get(k).asDouble();
            }
        }
        return out;
    }

    /** A plain ONNX Runtime run of the same file at {@code level}: mean-pooled under the mask, normalised. */
    static float[][] plainOrt(Path dir, OptLevel level) throws OrtException {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        long[] ids = new long[22];
        long[] mask = new long[22];
        for (int b = 0; b < 2; b++) {
            for (int t = 0; t < 11; t++) {
                ids[b * 11 + t] = IDS[b][t];
                mask[b * 11 + t] = t < LENGTHS[b] ? 1 : 0;
            }
        }
        long[] shape = {2, 11};
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(level);
            try (OrtSession s = env.createSession(dir.resolve("model.onnx").toString(), o);
                 OnnxTensor i = OnnxTensor.createTensor(env, LongBuffer.wrap(ids), shape);
                 OnnxTensor m = OnnxTensor.createTensor(env, LongBuffer.wrap(mask), shape);
                 OnnxTensor t = OnnxTensor.createTensor(env, LongBuffer.wrap(new long[22]), shape);
                 OrtSession.Result r = s.run(Map.of("input_ids", i, "attention_mask", m, "token_type_ids", t))) {
                FloatBuffer h = ((OnnxTensor) r.get(0)).getFloatBuffer();
                float[][] out = new float[2][384];
                for (int b = 0; b < 2; b++) {
                    double n = 0;
                    for (int k = 0; k < 384; k++) {
                        double sum = 0;
                        for (int tok = 0; tok < LENGTHS[b]; tok++) {
                            sum += h.get((b * 11 + tok) * 384 + k);
                        }
                        out[b][k] = (float) (sum / LENGTHS[b]);
                        n += out[b][k] * out[b][k];
                    }
                    for (int k = 0; k < 384; k++) {
                        out[b][k] = (float) (out[b][k] / Math.sqrt(n));
                    }
                }
                return out;
            }
        }
    }

    static double maxAbsDiff(float[][] a, float[][] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            for (int k = 0; k < a[i].length; k++) {
                m = Math.max(m, Math.abs(a[i][k] - b[i][k]));
            }
        }
        return m;
    }

    static double minCosine(float[][] a, float[][] b) {
        double min = 1;
        for (int i = 0; i < a.length; i++) {
            double dot = 0;
            double na = 0;
            double nb = 0;
            for (int k = 0; k < a[i].length; k++) {
                dot += (double) a[i][k] * b[i][k];
                na += (double) a[i][k] * a[i][k];
                nb += (double) b[i][k] * b[i][k];
            }
            min = Math.min(min, dot / Math.sqrt(na * nb));
        }
        return min;
    }

    @Test
    void wholeFloatModelEqualsAPlainOrtRun() throws OrtException {
        float[][] e = embed(floatDir);

        assertThat(e).hasDimensions(2, 384);
        assertThat(maxAbsDiff(e, plainOrt(floatDir, OptLevel.ALL_OPT))).isLessThanOrEqualTo(1e-5);
    }

    @Test
    void floatModelWithEveryLayerOnDiskEqualsAPlainOrtRun() throws Exception {
        Device d = Device.DISK;
        Path map = map("all-disk", d, d, d, d, d, d);

        float[][] e = embed(floatDir, "--device-map", map.toString());

        assertThat(maxAbsDiff(e, plainOrt(floatDir, OptLevel.ALL_OPT))).isLessThanOrEqualTo(1e-5);
    }

    @Test
    void floatModelOnAMixedMapEqualsAPlainOrtRun() throws Exception {
        Path map = map("mixed", Device.CPU, Device.DISK, Device.CPU, Device.DISK, Device.DISK, Device.CPU);

        float[][] e = embed(floatDir, "--device-map", map.toString(), "--offload-dir", tmp.resolve("off").toString());

        assertThat(maxAbsDiff(e, plainOrt(floatDir, OptLevel.ALL_OPT))).isLessThanOrEqualTo(1e-5);
    }

    @Test
    void int8ModelSplitEqualsAPlainOrtRunAtTheSameOptimisationLevel() throws Exception {
        Path mixed = map("int8-mixed", Device.CPU, Device.DISK, Device.CPU, Device.DISK, Device.DISK, Device.CPU);
        Device d = Device.DISK;
        Path disk = map("int8-disk", d, d, d, d, d, d);
        float[][] whole = plainOrt(int8Dir, OptLevel.NO_OPT);

        float[][] eMixed = embed(int8Dir, "--device-map", mixed.toString(), "--optimization", "NO_OPT");
        float[][] eDisk = embed(int8Dir, "--device-map", disk.toString(), "--optimization", "NO_OPT");

        assertThat(minCosine(eMixed, whole)).isGreaterThanOrEqualTo(0.9999);
        assertThat(minCosine(eDisk, whole)).isGreaterThanOrEqualTo(0.9999);
    }

    @Test
    void textIsTokenizedWithTheFoldersTokenizer() {
        Cli byText = Cli.run("embed", "--model", floatDir.toString(), "--text",
                "the quick brown fox jumps over the lazy dog", "--format", "json");
        Cli byIds = Cli.run("embed", "--model", floatDir.toString(), "--input-ids",
                "101,1996,4248,2829,4419,14523,2058,1996,13971,3899,102", "--format", "json");

        assertThat(byText.exitCode()).as(byText.toString()).isZero();
        assertThat(vectors(byText.json().get("embeddings"))).isDeepEqualTo(vectors(byIds.json().get("embeddings")));
    }

    @Test
    void clsPoolingTakesTheFirstToken() {
        float[][] cls = embed(floatDir, "--pooling", "cls");
        float[][] mean = embed(floatDir);

        assertThat(maxAbsDiff(cls, mean)).isGreaterThan(1e-3);
        assertThat(cls[0]).hasSize(384);
    }

    @Test
    void thePyTorchBackendNeedsACheckpointNotAnOnnxExport() {
        Cli r = Cli.run("embed", "--model", floatDir.toString(), "--backend", "pytorch", "--input-ids", "101,102");

        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("has no config.json, which the PyTorch backend builds the model from");
    }
}
