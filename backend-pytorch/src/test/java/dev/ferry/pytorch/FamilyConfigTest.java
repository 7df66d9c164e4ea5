package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.config.ConfigException;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.pytorch.models.DecoderSpec;
import dev.ferry.pytorch.models.DenseFamilies;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.util.function.Consumer;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * How the family declarations read a config: each layer's window, and bad input as a named error (an unknown
 * model_type, a field a family needs but lacks, an unsupported rope type or attention variant), never approximated.
 */
class FamilyConfigTest {

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static ModelConfig config(String fixture, Consumer<ObjectNode> edit) {
        ObjectNode json = ((ObjectNode) ModelConfig.read(Fixtures.model(fixture)).json()).deepCopy();
        edit.accept(json);
        return new ModelConfig(json);
    }

    static int[] windows(ModelConfig c) {
        DecoderSpec spec = ((dev.ferry.pytorch.models.DecoderFamily) ModelFamilies.family(c)).spec(c);
        return IntStream.range(0, spec.shape().layers()).map(spec::window).toArray();
    }

    @Test
    void slidingWindowsFollowEachFamilysLayerTypes() {
        assertThat(windows(config("tiny-mistral-sliding", j -> { }))).containsExactly(4, 4, 4, 4);
        assertThat(windows(config("tiny-qwen2-sliding", j -> { }))).containsExactly(0, 0, 4, 4);
        assertThat(windows(config("tiny-gemma2", j -> { }))).containsExactly(4, 0, 4, 0);
        assertThat(windows(config("tiny-gemma3", j -> { }))).containsExactly(4, 4, 4, 0);
        assertThat(windows(config("tiny-qwen3", j -> { }))).containsExactly(0, 0, 0, 0);
    }

    @Test
    void configsWithoutLayerTypesGetTheRuleTheirFamilyImplies() {
        assertThat(windows(config("tiny-qwen2-sliding", j -> j.remove("layer_types")))).containsExactly(0, 0, 4, 4);
        assertThat(windows(config("tiny-gemma2", j -> j.remove("layer_types")))).containsExactly(4, 0, 4, 0);
        assertThat(windows(config("tiny-gemma3", j -> {
            j.remove("layer_types");
            j.put("_sliding_window_pattern", 2);
        }))).containsExactly(4, 0, 4, 0);
    }

    @Test
    void qwen2sSlidingWindowIsIgnoredWithoutUseSlidingWindowAsInTransformers() {
        assertThat(windows(config("tiny-qwen2-sliding", j -> j.put("use_sliding_window", false))))
                .containsExactly(0, 0, 0, 0);
    }

    @Test
    void mistralWithoutSlidingWindowAttendsToEveryPosition() {
        assertThat(windows(config("tiny-mistral-sliding", j -> j.putNull("sliding_window"))))
                .containsExactly(0, 0, 0, 0);
    }

    @Test
    void anUnknownModelTypeNamesItAndTheSupportedOnes() {
        assertThatThrownBy(() -> ModelFamilies.build(config("tiny-qwen3", j -> j.put("model_type", "qwen9")), backend))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unknown model_type 'qwen9'")
                .hasMessageContaining("qwen3").hasMessageContaining("gemma3_text").hasMessageContaining("phi3");
    }

    @Test
    void aFieldTheFamilyNeedsButTheConfigLacksIsNamed() {
        assertThatThrownBy(() -> ModelFamilies.build(config("tiny-gemma2", j -> j.remove("query_pre_attn_scalar")),
                backend)).isInstanceOf(ConfigException.class).hasMessageContaining("query_pre_attn_scalar")
                .hasMessageContaining("gemma2")
                .satisfies(e -> assertThat(((ConfigException) e).field()).isEqualTo("query_pre_attn_scalar"));
    }

    @Test
    void slidingLayersWithoutAWindowAreRefusedNamingSlidingWindow() {
        assertThatThrownBy(() -> ModelFamilies.build(config("tiny-gemma2", j -> j.remove("sliding_window")), backend))
                .isInstanceOf(ConfigException.class).hasMessageContaining("sliding_window");
    }

    @Test
    void anUnsupportedRopeTypeIsRefusedByName() {
        assertThatThrownBy(() -> ModelFamilies.build(config("tiny-qwen3", j -> ((ObjectNode) j.get("rope_parameters"))
                .put("rope_type", "yarn").put("factor", 4.0)), backend))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("rope_type 'yarn'")
                .hasMessageContaining("qwen3").hasMessageContaining("longrope");
    }

    @Test
    void aRopeParameterTheTypeNeedsIsNamed() {
        assertThatThrownBy(() -> ModelFamilies.build(config("tiny-phi3-longrope",
                j -> ((ObjectNode) j.get("rope_parameters")).remove("long_factor")), backend))
                .isInstanceOf(ConfigException.class).hasMessageContaining("long_factor");
        assertThatThrownBy(() -> ModelFamilies.build(config("tiny-gemma3",
                j -> ((ObjectNode) j.get("rope_parameters").get("full_attention")).remove("factor")), backend))
                .isInstanceOf(ConfigException.class).hasMessageContaining("rope_parameters.full_attention.factor");
    }

    @Test
    void anAttentionKindOtherThanFullOrSlidingIsRefused() {
        assertThatThrownBy(() -> ModelFamilies.build(config("tiny-gemma3",
                j -> ((com.fasterxml.jackson.databind.node.ArrayNode) j.get("layer_types")).set(0, "chunked_attention")),
                backend)).isInstanceOf(ConfigException.class).hasMessageContaining("chunked_attention")
                .hasMessageContaining("layer_types");
    }

    @Test
    void bidirectionalGemmaAttentionIsRefused() {
        assertThatThrownBy(() -> ModelFamilies.build(config("tiny-gemma3", j -> j.put("use_bidirectional_attention", true)),
                backend)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("use_bidirectional_attention");
    }

    @Test
    void partialRotaryIsRefusedByAFamilyThatRotatesWholeHeads() {
        assertThatThrownBy(() -> ModelFamilies.build(config("tiny-qwen3", j -> ((ObjectNode) j.get("rope_parameters"))
                .put("partial_rotary_factor", 0.5)), backend))
                .isInstanceOf(ConfigException.class).hasMessageContaining("partial_rotary_factor");
    }

    @Test
    void gemmaTiesItsHeadToTheEmbeddingsWhenTheConfigIsSilent() {
        var gemma = ModelFamilies.build(config("tiny-gemma2", j -> j.remove("tie_word_embeddings")), backend);
        assertThat(gemma.find("lm_head").tensor("weight")).isSameAs(gemma.find("model.embed_tokens").tensor("weight"));
        var qwen = ModelFamilies.build(config("tiny-qwen3", j -> j.remove("tie_word_embeddings")), backend);
        assertThat(qwen.find("lm_head").tensor("weight")).isNotSameAs(qwen.find("model.embed_tokens").tensor("weight"));
    }

    @Test
    void everyDenseFamilyIsSupported() {
        assertThat(ModelFamilies.supportedModelTypes()).containsAll(DenseFamilies.ALL.stream()
                .map(f -> f.modelType()).toList()).contains("gpt2");
    }
}
