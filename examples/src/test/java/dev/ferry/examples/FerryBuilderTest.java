package dev.ferry.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.PyTorchDispatchedModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The one entry point, {@code Ferry.model(dir)...load()}, on both backends. */
class FerryBuilderTest {

    @TempDir
    Path tmp;

    /**
     * How many of transformers 5.17's greedy tokens Ferry must equal: all of them, but for LongRoPE only those predicted
     * from at most {@code original_max_position_embeddings} positions. Past that switch transformers 5.17's generate
     * loses the recompute it means to do and Ferry recomputes as transformers 4.x did (FidelityTest shows Ferry's
     * cached tokens equal its uncached ones there, and the long-prompt golden its logits).
     */
    static int tokensBeforeLongRopeSwitch(String fixture, int promptLength, int newTokens) throws IOException {
        JsonNode config = new ObjectMapper().readTree(Fixtures.model(fixture).resolve("config.json").toFile());
        JsonNode rope = config.path("rope_parameters");
        if (!"longrope".equals(rope.path("rope_type").asText())) {
            return newTokens;
        }
        int original = config.path("original_max_position_embeddings")
                .asInt(rope.path("original_max_position_embeddings").asInt());
        return Math.max(0, Math.min(newTokens, original - promptLength + 1));
    }

    static JsonNode golden(String fixture) throws IOException {
        return new ObjectMapper().readTree(Fixtures.model(fixture).resolve("golden.json").toFile());
    }

    static long[] longs(JsonNode array) {
        return StreamSupport.stream(array.spliterator(), false).mapToLong(JsonNode::asLong).toArray();
    }

    /** tiny-llama with its last decoder layer on disk, the rest resident on the CPU. */
    static Map<String, Object> layer3OnDisk() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model.embed_tokens", "cpu");
        m.put("model.layers.0", "cpu");
        m.put("model.layers.1", "cpu");
        m.put("model.layers.2", "cpu");
        m.put("model.layers.3", "disk");
        m.put("model.norm", "cpu");
        m.put("model.rotary_emb", "cpu");
        m.put("lm_head", "cpu");
        return m;
    }

    /**
     * Each family over the shared blocks, loaded as users load a model (the builder, the family's block class as the
     * default preload), its last layer on disk: transformers' greedy tokens and logits.
     */
    @ParameterizedTest
    @ValueSource(strings = {"tiny-qwen3", "tiny-gemma2", "tiny-gemma3", "tiny-phi3", "tiny-phi3-longrope",
            "tiny-mistral-sliding", "tiny-qwen2-sliding"})
    void familiesGiveTheirGoldenThroughTheBuilderWithALayerOnDisk(String fixture) throws IOException {
        JsonNode golden = golden(fixture);
        try (DispatchedModel model = Ferry.model(Fixtures.model(fixture)).deviceMap(layer3OnDisk())
                .backend("pytorch").load()) {
            long[] ids = longs(golden.get("input_ids"));
            long[] expectedTokens = longs(golden.get("greedy_new_tokens"));
            int exact = tokensBeforeLongRopeSwitch(fixture, ids.length, expectedTokens.length);
            assertThat(java.util.Arrays.copyOf(model.generate(ids, GenerationConfig.greedy(8)), exact))
                    .containsExactly(java.util.Arrays.copyOf(expectedTokens, exact));
            assertThat(model.report().entry("model.layers.3").storage()).isEqualTo(Device.disk());
            float[][] logits = model.logits(ids);
            int vocab = golden.get("logits_shape").get(1).asInt();
            JsonNode expected = golden.get("logits");
            float worst = 0;
            for (int i = 0; i < ids.length; i++) {
                for (int v = 0; v < vocab; v++) {
                    worst = Math.max(worst, Math.abs(logits[i][v] - (float) expected.get(i * vocab + v).asDouble()));
                }
            }
            assertThat(worst).as("max |logits - transformers|").isLessThan(1e-4f);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void goldenTokensThroughTheBuilderWithABlockOnDisk(String backend) throws IOException {
        JsonNode golden = golden("tiny-llama");
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).deviceMap(layer3OnDisk())
                .backend(backend).load()) {
            long[] tokens = model.generate(longs(golden.get("input_ids")), GenerationConfig.greedy(8));

            assertThat(tokens).containsExactly(longs(golden.get("greedy_new_tokens")));
            assertThat(model.backend()).isEqualTo(backend);
            assertThat(model.deviceMap().deviceOf("model.layers.3.mlp.up_proj")).isEqualTo(Device.disk());
            assertThat(model.report().entry("model.layers.3").storage()).isEqualTo(Device.disk());
            float[][] logits = model.logits(longs(golden.get("input_ids")));
            assertThat(logits.length).isEqualTo(8);
            JsonNode expected = golden.get("logits");
            float worst = 0;
            for (int i = 0; i < 8; i++) {
                for (int v = 0; v < 256; v++) {
                    JsonNode e = expected.get(0).isArray() ? expected.get(i).get(v) : expected.get(i * 256 + v);
                    worst = Math.max(worst, Math.abs(logits[i][v] - (float) e.asDouble()));
                }
            }
            assertThat(worst).as("max |logits - transformers|").isLessThan(1e-4f);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void anOffloadFolderIsWrittenAndTheTokensStayGolden(String backend) throws IOException {
        JsonNode golden = golden("tiny-llama");
        Path folder = tmp.resolve("offload-" + backend);
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).deviceMap(layer3OnDisk())
                .offloadFolder(folder).backend(backend).load()) {
            assertThat(model.generate(longs(golden.get("input_ids")), GenerationConfig.greedy(8)))
                    .containsExactly(longs(golden.get("greedy_new_tokens")));
        }
        assertThat(folder.resolve("index.json")).isRegularFile();
    }

    @Test
    void thePreloadDefaultIsTheFamilysBlockClassAndNoPreloadTurnsItOff() {
        try (DispatchedModel preloaded = Ferry.model(Fixtures.model("tiny-llama")).deviceMap(layer3OnDisk())
                .backend("pytorch").load()) {
            assertThat(preloaded.report().hookedCount()).isEqualTo(9);
        }
        try (DispatchedModel plain = Ferry.model(Fixtures.model("tiny-llama")).deviceMap(layer3OnDisk())
                .noPreload().backend("pytorch").load()) {
            assertThat(plain.report().hookedCount()).isEqualTo(53);
        }
    }

    @Test
    void autoWithBudgetsSpillsToDiskAndStaysGolden() throws IOException {
        JsonNode golden = golden("tiny-llama");
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).deviceMap("auto")
                .maxMemory("cpu=400KiB").backend("pytorch").load()) {
            assertThat(model.deviceMap().entries()).containsValue(Device.disk()).containsValue(Device.cpu());
            assertThat(model.deviceMap().entries().get("model.layers.0")).isEqualTo(Device.cpu());
            assertThat(model.generate(longs(golden.get("input_ids")), GenerationConfig.greedy(8)))
                    .containsExactly(longs(golden.get("greedy_new_tokens")));
        }
    }

    @Test
    void closeFreesTheNativeArrays() {
        DjlBackend backend;
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).deviceMap(layer3OnDisk())
                .backend("pytorch").load()) {
            backend = ((PyTorchDispatchedModel) model).djlBackend();
            model.generate(new long[] {1, 17, 42}, GenerationConfig.greedy(2));
            assertThat(backend.liveArrayCount()).as("resident weights").isGreaterThan(20);
        }
        assertThat(backend.liveArrayCount()).isZero();
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void aClosedModelRefusesCallsClearly(String backend) {
        DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).backend(backend).load();
        model.close();
        model.close(); // idempotent
        assertThatThrownBy(() -> model.generate(new long[] {1, 2}, GenerationConfig.greedy(2)))
                .isInstanceOf(IllegalStateException.class).hasMessage("the model is closed");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void aDeviceMapKeyNamingNoModuleIsAClearError(String backend) {
        Map<String, Object> map = layer3OnDisk();
        map.put("model.layers.9", "cpu");
        assertThatThrownBy(() -> Ferry.model(Fixtures.model("tiny-llama")).deviceMap(map).backend(backend).load())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("device map: ")
                .hasMessageContaining("model.layers.9");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void textInTextOutThroughTheFoldersTokenizer(String backend) {
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).backend(backend).load()) {
            String text = model.generate("Hello", GenerationConfig.greedy(4));
            assertThat(text).isNotNull();
            assertThat(text).isEqualTo(texts.computeIfAbsent("Hello", k -> text));
        }
    }

    private static final Map<String, String> texts = new java.util.concurrent.ConcurrentHashMap<>();

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void oneModelCalledFromFourThreadsGivesEachCallTheGoldenTokens(String backend) throws Exception {
        JsonNode golden = golden("tiny-llama");
        long[] prompt = longs(golden.get("input_ids"));
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).deviceMap(layer3OnDisk())
                .backend(backend).load()) {
            java.util.List<java.util.concurrent.Future<long[]>> calls = new java.util.ArrayList<>();
            for (int i = 0; i < 12; i++) {
                calls.add(pool.submit(() -> model.generate(prompt, GenerationConfig.greedy(8))));
            }
            for (java.util.concurrent.Future<long[]> call : calls) {
                assertThat(call.get()).containsExactly(longs(golden.get("greedy_new_tokens")));
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void theMapIsGivenOnce() {
        assertThatThrownBy(() -> Ferry.model(Fixtures.model("tiny-llama")).deviceMap("auto").deviceMap(layer3OnDisk()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("given twice");
    }

    @Test
    void anUnknownBackendNamesTheOnesFound() {
        assertThatThrownBy(() -> Ferry.model(Fixtures.model("tiny-llama")).backend("tensorflow").load())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("onnx, pytorch");
        assertThat(Files.isDirectory(Fixtures.model("tiny-llama"))).isTrue();
    }
}
