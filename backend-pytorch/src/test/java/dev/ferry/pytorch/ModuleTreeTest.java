package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The families build exactly transformers' module tree: names, classes, own parameters and buffers. */
class ModuleTreeTest {

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-llama", "tiny-gpt2", "tiny-qwen3", "tiny-gemma2", "tiny-gemma3", "tiny-phi3",
            "tiny-phi3-longrope", "tiny-mistral-sliding", "tiny-qwen2-sliding"})
    void treeEqualsTransformers(String fixture) throws IOException {
        JsonNode expected = new ObjectMapper().readTree(Fixtures.model(fixture).resolve("module_tree.json").toFile());
        CausalLM model = ModelFamilies.build(Fixtures.model(fixture), backend);
        List<String> want = new ArrayList<>();
        expected.forEach(m -> want.add(describe(m)));
        List<String> got = model.modules().stream().map(ModuleTreeTest::describe).toList();
        assertThat(got).containsExactlyElementsOf(want);
        // built on meta: no parameter is materialised before loading
        assertThat(model.stateDict().values()).noneMatch(TensorSlot::isMaterialised);
    }

    private static String describe(JsonNode m) {
        StringBuilder sb = new StringBuilder(m.get("name").asText()).append(" (").append(m.get("class").asText())
                .append(")");
        m.get("params").fields().forEachRemaining(e -> sb.append(" param ").append(e.getKey()).append(' ')
                .append(e.getValue().get("dtype").asText()).append(e.getValue().get("shape")));
        m.get("buffers").fields().forEachRemaining(e -> sb.append(" buffer ").append(e.getKey()).append(' ')
                .append(e.getValue().get("dtype").asText()).append(e.getValue().get("shape")));
        return sb.toString().replace(" ", " ").replace(",", ",");
    }

    private static String describe(Module m) {
        StringBuilder sb = new StringBuilder(m.name()).append(" (").append(m.className()).append(")");
        for (Map.Entry<String, TensorSlot> e : m.ownTensors().entrySet()) {
            if (e.getValue().isParameter()) {
                sb.append(" param ").append(e.getKey()).append(' ').append(shape(e.getValue()));
            }
        }
        for (Map.Entry<String, TensorSlot> e : m.ownTensors().entrySet()) {
            if (!e.getValue().isParameter()) {
                sb.append(" buffer ").append(e.getKey()).append(' ').append(shape(e.getValue()));
            }
        }
        return sb.toString();
    }

    private static String shape(TensorSlot s) {
        StringBuilder sb = new StringBuilder(s.spec().dtype().torchName()).append('[');
        long[] sh = s.spec().shape();
        for (int i = 0; i < sh.length; i++) {
            sb.append(i == 0 ? "" : ",").append(sh[i]);
        }
        return sb.append(']').toString();
    }
}
