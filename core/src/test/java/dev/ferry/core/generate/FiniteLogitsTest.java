package dev.ferry.core.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.config.TokenLimits;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Logits that hold NaN or infinity stop generation with a named error (before, greedy picked token 0 from NaN and
 * sampling returned -1), and a temperature whose scores overflow samples greedily instead of returning -1.
 */
class FiniteLogitsTest {

    /** Finite logits favouring token 3 until step {@code badAt}, then {@code bad} at token 5. */
    static LanguageModel model(int badAt, float bad) {
        return new LanguageModel() {
            int steps;

            @Override
            public TokenLimits tokenLimits() {
                return new TokenLimits(8, 64);
            }

            @Override
            public List<Long> eosTokenIds() {
                return List.of();
            }

            @Override
            public boolean supportsBatches() {
                return true;
            }

            @Override
            public float[][] nextTokenLogits(long[] ids, int rows, long[] mask, Cache cache) {
                float[][] out = new float[rows][8];
                for (float[] row : out) {
                    row[3] = 2f;
                    if (steps == badAt) {
                        row[5] = bad;
                    }
                }
                steps++;
                return out;
            }

            @Override
            public float[][] logits(long[] ids) {
                throw new UnsupportedOperationException();
            }
        };
    }

    @Test
    void nanLogitsStopGreedyGenerationWithANamedError() {
        assertThatThrownBy(() -> GenerationLoop.generate(model(2, Float.NaN), new long[] {1}, GenerationConfig.greedy(8)))
                .isInstanceOf(NonFiniteLogitsException.class).hasMessageContaining("NaN")
                .hasMessageContaining("new token 2").hasMessageContaining("token id 5")
                .extracting(e -> ((NonFiniteLogitsException) e).step()).isEqualTo(2);
    }

    @Test
    void infiniteLogitsStopSampledGeneration() {
        assertThatThrownBy(() -> GenerationLoop.generate(model(0, Float.POSITIVE_INFINITY), new long[] {1},
                GenerationConfig.sampled(8, 0.7, 0, 1.0, 1))).isInstanceOf(NonFiniteLogitsException.class)
                .hasMessageContaining("Infinity");
    }

    @Test
    void nanLogitsInABatchNameTheRow() {
        assertThatThrownBy(() -> GenerationLoop.generate(model(1, Float.NaN), new long[][] {{1}, {2, 3}},
                GenerationConfig.greedy(4))).isInstanceOf(NonFiniteLogitsException.class)
                .hasMessageContaining("new token 1");
    }

    @Test
    void finiteLogitsGenerateAsBefore() {
        assertThat(GenerationLoop.generate(model(-1, 0), new long[] {1}, GenerationConfig.greedy(3)))
                .containsExactly(3, 3, 3);
    }

    @Test
    void aTemperatureThatOverflowsTheScoresSamplesGreedily() {
        Sampler sampler = new Sampler(GenerationConfig.sampled(1, 1e-320, 0, 1.0, 7));
        float[] logits = {0.5f, -1f, 2f, 1.5f};
        assertThat(sampler.next(logits)).isEqualTo(2);
        assertThat(GenerationLoop.generate(model(-1, 0), new long[] {1}, GenerationConfig.sampled(4, 1e-320, 0, 0.9, 3)))
                .containsExactly(3, 3, 3, 3);
    }
}
