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
        DecoderShape tiny = new DecoderShape(256, 64, 4, 4, 2, 16, 128, 3, 0, false);
        assertThat(tiny.requireSane(SOURCE)).isSameAs(tiny);
        // q, o: 64x64; k, v: 64x32; MLP 3 x 64x128; embeddings and head 2 x 256x64
        assertThat(tiny.parameters()).isEqualTo(BigInteger.valueOf(4L * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128)
                + 2L * 256 * 64));
    }

    @Test
    void hugeHiddenSizeIsRefusedWithoutOverflow() {
        DecoderShape absurd = new DecoderShape(Integer.MAX_VALUE, Integer.MAX_VALUE, 16_384, 1, 1,
                Integer.MAX_VALUE, Integer.MAX_VALUE, 3, 0, false);
        assertThat(absurd.parameters()).isGreaterThan(BigInteger.valueOf(Long.MAX_VALUE));
        assertThatThrownBy(() -> absurd.requireSane(SOURCE)).isInstanceOf(ConfigException.class)
                .hasMessageContaining("config.json implies about").hasMessageContaining("hidden size 2147483647")
                .hasMessageContaining("parameters");
    }

    @Test
    void llama405BShapeIsAccepted() {
        DecoderShape big = new DecoderShape(128_256, 16_384, 126, 128, 8, 128, 53_248, 3, 0, false);
        assertThat(big.requireSane(SOURCE).parameters().longValue()).isBetween(400_000_000_000L, 410_000_000_000L);
    }
}
