package dev.ferry.core.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.math.BigInteger;
import org.junit.jupiter.api.Test;

/** The parameter count a config implies is computed exactly and bounded, so absurd sizes fail at once. */
class DecoderShapeTest {

    static final ConfigNumbers SOURCE = new ConfigNumbers(new ObjectMapper().createObjectNode(), "config.json");

    @Test
    void tinyLlamaIsAccepted() {
        DecoderShape tiny = new DecoderShape(256, 64, 4, 4, 2, 16, 128, 3, 128, false, false);
        assertThat(tiny.requireSane(SOURCE)).isSameAs(tiny);
        // q, o: 64x64; k, v: 64x32; MLP 3 x 64x128; embeddings and head 2 x 256x64
        assertThat(tiny.parameters()).isEqualTo(BigInteger.valueOf(4L * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128)
                + 2L * 256 * 64));
    }

    @Test
    void hugeHiddenSizeIsRefusedWithoutOverflow() {
        DecoderShape absurd = new DecoderShape(Integer.MAX_VALUE, Integer.MAX_VALUE, 16_384, 1, 1,
                Integer.MAX_VALUE, Integer.MAX_VALUE, 3, Integer.MAX_VALUE, false, false);
        assertThat(absurd.parameters()).isGreaterThan(BigInteger.valueOf(Long.MAX_VALUE));
        assertThatThrownBy(() -> absurd.requireSane(SOURCE)).isInstanceOf(ConfigException.class)
                .hasMessageContaining("config.json implies about").hasMessageContaining("hidden size 2147483647")
                .hasMessageContaining("parameters");
    }

    @Test
    void llama405BShapeIsAccepted() {
        DecoderShape big = new DecoderShape(128_256, 16_384, 126, 128, 8, 128, 53_248, 3, 131_072, false, false);
        assertThat(big.requireSane(SOURCE).parameters().longValue()).isBetween(400_000_000_000L, 410_000_000_000L);
    }

    static DecoderShape fromConfig(String json) throws Exception {
        return DecoderShape.fromConfig(new ObjectMapper().readTree(json), "config.json");
    }

    static final String LLAMA = "{\"model_type\": \"llama\", \"vocab_size\": 256, \"hidden_size\": 64, "
            + "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"intermediate_size\": 128, "
            + "\"num_hidden_layers\": 4, \"max_position_embeddings\": 128";

    @Test
    void llamaConfigGivesItsShape() throws Exception {
        DecoderShape s = fromConfig(LLAMA + "}");
        assertThat(s).isEqualTo(new DecoderShape(256, 64, 4, 4, 2, 16, 128, 3, 128, false, false));
        assertThat(s.tokenLimits()).isEqualTo(new TokenLimits(256, 128));
    }

    @Test
    void zeroHeadsIsNamedNotDivisionByZero() {
        assertThatThrownBy(() -> fromConfig(LLAMA + ", \"num_attention_heads\": 0}"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("num_attention_heads must be a positive");
    }

    @Test
    void oddRotaryHeadSizeIsNamed() {
        assertThatThrownBy(() -> fromConfig(LLAMA + ", \"head_dim\": 15}"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("head_dim").hasMessageContaining("15");
    }

    @Test
    void hugeHeadDimIsRefusedBeforeTheRotaryTableIsAllocated() {
        assertThatThrownBy(() -> fromConfig(LLAMA + ", \"head_dim\": 2147483646}"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("head_dim is 2147483646");
    }

    @Test
    void configWithoutPositionsIsUnbounded() throws Exception {
        DecoderShape s = fromConfig(LLAMA.replace(", \"max_position_embeddings\": 128", "") + "}");
        assertThat(s.tokenLimits().maxPositions()).isEqualTo(Integer.MAX_VALUE);
    }

    @Test
    void gpt2ReadsItsOwnNamesAndTiesByDefault() throws Exception {
        DecoderShape s = fromConfig("{\"model_type\": \"gpt2\", \"vocab_size\": 256, \"n_embd\": 64, "
                + "\"n_head\": 4, \"n_inner\": null, \"n_layer\": 4, \"n_positions\": 128}");
        assertThat(s).isEqualTo(new DecoderShape(256, 64, 4, 4, 4, 16, 256, 2, 128, true, true));
    }

    @Test
    void gpt2DefaultInnerWidthThatWouldWrapIsRefused() {
        assertThatThrownBy(() -> fromConfig("{\"model_type\": \"gpt2\", \"vocab_size\": 256, "
                + "\"n_embd\": 1073741824, \"n_head\": 1, \"n_layer\": 1, \"n_positions\": 1}"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("n_inner").hasMessageContaining("n_embd");
    }
}
