package dev.ferry.core.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** Config integers are read without wrapping, must be positive where they are sizes, and name the field. */
class ConfigNumbersTest {

    static ConfigNumbers config(String json) throws Exception {
        return new ConfigNumbers(new ObjectMapper().readTree(json), "config.json");
    }

    @Test
    void valueAbove2To32IsRefusedNotWrapped() throws Exception {
        // 2^32 + 4 would wrap to 4 when read as an int
        assertThatThrownBy(() -> config("{\"num_hidden_layers\": 4294967300}").positive("num_hidden_layers"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("num_hidden_layers").hasMessageContaining("4294967300")
                .extracting(e -> ((ConfigException) e).field()).isEqualTo("num_hidden_layers");
    }

    @Test
    void valueBeyondALongIsRefusedNotWrapped() throws Exception {
        assertThatThrownBy(() -> config("{\"vocab_size\": 18446744073709551872}").positive("vocab_size"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("vocab_size")
                .hasMessageContaining("18446744073709551872");
    }

    @Test
    void integerOutsideIntRangeIsRefusedNamingTheField() throws Exception {
        assertThatThrownBy(() -> config("{\"rope_offset\": -4294967296}").integer("rope_offset"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("rope_offset")
                .hasMessageContaining("32-bit");
    }

    @Test
    void zeroIsRefusedAsASize() throws Exception {
        assertThatThrownBy(() -> config("{\"num_attention_heads\": 0}").positive("num_attention_heads"))
                .isInstanceOf(ConfigException.class)
                .hasMessage("config.json: num_attention_heads must be a positive integer, got 0");
    }

    @Test
    void negativeLayersAreRefused() throws Exception {
        assertThatThrownBy(() -> config("{\"num_hidden_layers\": -3}").layers("num_hidden_layers"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("num_hidden_layers")
                .hasMessageContaining("-3");
    }

    @Test
    void absurdLayerCountIsRefusedUpFront() throws Exception {
        assertThatThrownBy(() -> config("{\"num_hidden_layers\": 2147483647}").layers("num_hidden_layers"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("num_hidden_layers")
                .hasMessageContaining("2147483647").hasMessageContaining(String.valueOf(ConfigNumbers.MAX_LAYERS));
    }

    @Test
    void fractionIsNotAnInteger() throws Exception {
        assertThatThrownBy(() -> config("{\"hidden_size\": 64.5}").positive("hidden_size"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("hidden_size must be an integer");
    }

    @Test
    void stringIsNotAnInteger() throws Exception {
        assertThatThrownBy(() -> config("{\"hidden_size\": \"64\"}").positive("hidden_size"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("hidden_size must be an integer");
    }

    @Test
    void missingRequiredFieldIsNamed() throws Exception {
        assertThatThrownBy(() -> config("{}").positive("vocab_size"))
                .isInstanceOf(ConfigException.class).hasMessage("config.json lacks 'vocab_size'");
    }

    @Test
    void absentOrNullOptionalFieldGivesTheFallback() throws Exception {
        assertThat(config("{\"n_inner\": null}").positive("n_inner", 256)).isEqualTo(256);
        assertThat(config("{}").positive("n_inner", 256)).isEqualTo(256);
    }

    @Test
    void largestIntIsAccepted() throws Exception {
        assertThat(config("{\"max_position_embeddings\": 2147483647}").positive("max_position_embeddings"))
                .isEqualTo(Integer.MAX_VALUE);
    }

    @Test
    void indivisibleHeadsNameBothFields() throws Exception {
        assertThatThrownBy(() -> config("{}").requireDivisible("num_attention_heads", 6, "num_key_value_heads", 4))
                .isInstanceOf(ConfigException.class)
                .hasMessage("config.json: num_attention_heads (6) must be divisible by num_key_value_heads (4)");
    }
}
