package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.RoutedExperts;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The MoE families build transformers 5's module tree (names, classes, parameters) everywhere but inside
 * {@code mlp.experts}, where transformers holds two fused 3-D parameters and Ferry one child module per expert
 * holding that expert's slices of them.
 */
class MoeModuleTreeTest {

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static JsonNode transformers(String fixture) throws IOException {
        return new ObjectMapper().readTree(Fixtures.model(fixture).resolve("module_tree.json").toFile());
    }

    static boolean insideExperts(String name) {
        return name.matches(".*\\.mlp\\.experts\\..*");
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mixtral", "tiny-qwen3-moe"})
    void outsideTheExpertsTheTreeIsTransformers(String fixture) throws IOException {
        List<String> want = new ArrayList<>();
        for (JsonNode m : transformers(fixture)) {
            String name = m.get("name").asText();
            if (insideExperts(name)) {
                continue;
            }
            StringBuilder sb = new StringBuilder(name).append(" (").append(m.get("class").asText()).append(")");
            if (!name.endsWith(".mlp.experts")) {
                m.get("params").fields().forEachRemaining(e -> sb.append(' ').append(e.getKey())
                        .append(e.getValue().get("shape").toString().replace(",", ", ")));
            }
            want.add(sb.toString());
        }
        CausalLM model = ModelFamilies.build(Fixtures.model(fixture), backend);
        List<String> got = new ArrayList<>();
        for (Module m : model.modules()) {
            if (insideExperts(m.name())) {
                continue;
            }
            StringBuilder sb = new StringBuilder(m.name()).append(" (").append(m.className()).append(")");
            m.ownTensors().forEach((local, slot) -> {
                if (slot.isParameter()) {
                    sb.append(' ').append(local).append(Arrays.toString(slot.spec().shape()));
                }
            });
            got.add(sb.toString());
        }
        assertThat(got).containsExactlyElementsOf(want);
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mixtral", "tiny-qwen3-moe"})
    void eachExpertIsAChildHoldingItsSlicesOfTheFusedParameters(String fixture) throws IOException {
        CausalLM model = ModelFamilies.build(Fixtures.model(fixture), backend);
        int holders = 0;
        for (JsonNode m : transformers(fixture)) {
            if (!m.get("name").asText().endsWith(".mlp.experts")) {
                continue;
            }
            holders++;
            long[] gateUp = shape(m.get("params").get("gate_up_proj").get("shape"));
            long[] down = shape(m.get("params").get("down_proj").get("shape"));
            Module experts = model.find(m.get("name").asText());
            assertThat(experts).isInstanceOf(RoutedExperts.class);
            assertThat(experts.children()).hasSize((int) gateUp[0]);
            for (Module expert : experts.children().values()) {
                long rows = 0;
                long downElements = 0;
                for (RoutedExperts.FusedSlice s : ((RoutedExperts) experts).fusedLayout()) {
                    TensorSlot t = expert.find(s.expertTensor().replace(".weight", "")).tensor("weight");
                    assertThat(t.spec().shape()).containsExactly(s.rows(), s.fusedTensor().equals("gate_up_proj")
                            ? gateUp[2] : down[2]);
                    if (s.fusedTensor().equals("gate_up_proj")) {
                        rows += s.rows();
                    } else {
                        downElements += t.spec().elementCount();
                    }
                }
                assertThat(rows).isEqualTo(gateUp[1]);
                assertThat(downElements).isEqualTo(down[1] * down[2]);
            }
        }
        assertThat(holders).isPositive();
    }

    private static long[] shape(JsonNode a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asLong();
        }
        return out;
    }
}
