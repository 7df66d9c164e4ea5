package dev.ferry.core.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * The real numbers of a config are typed and ranged where the config enters (before these checks, a
 * {@code rope_theta} of "abc" or a negative epsilon was read as 0 or used as is, and generation returned tokens of
 * NaN logits with exit 0).
 */
class ConfigFloatsTest {

    static final String LLAMA = "{\"model_type\": \"llama\", \"vocab_size\": 256, \"hidden_size\": 64, "
            + "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"intermediate_size\": 128, "
            + "\"num_hidden_layers\": 4, \"max_position_embeddings\": 128";
    static final String GPT2 = "{\"model_type\": \"gpt2\", \"vocab_size\": 256, \"n_embd\": 64, \"n_head\": 4, "
            + "\"n_layer\": 2, \"n_positions\": 64";
    static final String LLAMA3 = ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
            + "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}";

    static void refused(String json, String field, String fragment) {
        assertThatThrownBy(() -> DecoderShape.fromConfig(new ObjectMapper().readTree(json), "config.json"))
                .isInstanceOf(ConfigException.class).hasMessageContaining(field).hasMessageContaining(fragment)
                .extracting(e -> ((ConfigException) e).field()).isEqualTo(field);
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"abc\"", "null", "true"})
    void ropeThetaThatIsNotANumberIsNamed(String value) {
        refused(LLAMA + ", \"rope_theta\": " + value + "}", "rope_theta", "must be a number");
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "-10000", "-0.5"})
    void ropeThetaThatIsNotPositiveIsNamed(String value) {
        refused(LLAMA + ", \"rope_theta\": " + value + "}", "rope_theta", "must be a positive number");
    }

    @Test
    void ropeThetaInsideRopeParametersIsCheckedToo() {
        refused(LLAMA + ", \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": \"abc\"}}", "rope_theta",
                "\"abc\"");
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "-1e-6", "\"1e-6\""})
    void badRmsNormEpsIsNamed(String value) {
        refused(LLAMA + ", \"rms_norm_eps\": " + value + "}", "rms_norm_eps", "rms_norm_eps");
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "-1e-5", "null"})
    void badLayerNormEpsilonIsNamed(String value) {
        refused(GPT2 + ", \"layer_norm_epsilon\": " + value + "}", "layer_norm_epsilon", "layer_norm_epsilon");
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"x\"", "0", "-8", "1e400"})
    void badLlama3FactorIsNamed(String value) {
        refused(LLAMA + LLAMA3.replace("\"factor\": 8.0", "\"factor\": " + value) + "}", "factor", "factor");
    }

    @Test
    void llama3HighFrequencyFactorMustExceedTheLowOne() {
        refused(LLAMA + LLAMA3.replace("\"high_freq_factor\": 4.0", "\"high_freq_factor\": 1.0") + "}",
                "high_freq_factor", "above low_freq_factor");
    }

    @Test
    void goodFloatsAreRead() throws Exception {
        RopeParameters rope = RopeParameters.of(new ObjectMapper().readTree(LLAMA + ", \"rope_theta\": 500000"
                + LLAMA3 + "}"), "config.json");
        assertThat(rope).isEqualTo(new RopeParameters(500000, "llama3", 8, 1, 4, 8192));
        assertThat(RopeParameters.of(new ObjectMapper().readTree(LLAMA + "}"), "config.json").theta())
                .isEqualTo(10000.0);
        DecoderShape.fromConfig(new ObjectMapper().readTree(LLAMA + ", \"rms_norm_eps\": 1e-5}"), "config.json");
    }

    @Test
    void aStringWhereANumberBelongsIsNotReadAsZero() throws Exception {
        ModelConfig c = new ModelConfig(new ObjectMapper().readTree(GPT2 + ", \"attn_pdrop\": \"abc\"}"));
        assertThatThrownBy(() -> c.number("attn_pdrop", 0.1)).isInstanceOf(ConfigException.class)
                .hasMessageContaining("attn_pdrop must be a number, got \"abc\"");
    }
}
