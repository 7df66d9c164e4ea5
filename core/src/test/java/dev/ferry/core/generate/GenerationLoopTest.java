package dev.ferry.core.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.config.TokenLimits;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The backend-neutral loop over a pure-Java model whose next token is {@code (last + 1) % vocab}. */
class GenerationLoopTest {

    /** Counts forwards and the rows/lengths each saw; with a cache it is fed one token per step. */
    static final class Counting implements LanguageModel {
        final int vocab;
        final boolean batches;
        final boolean cached;
        final List<Integer> stepLengths = new ArrayList<>();
        int caches;
        int closedCaches;

        Counting(int vocab, boolean batches, boolean cached) {
            this.vocab = vocab;
            this.batches = batches;
            this.cached = cached;
        }

        @Override
        public TokenLimits tokenLimits() {
            return new TokenLimits(vocab, 12);
        }

        @Override
        public List<Long> eosTokenIds() {
            return List.of(0L);
        }

        @Override
        public boolean supportsBatches() {
            return batches;
        }

        @Override
        public Cache newCache() {
            if (!cached) {
                return null;
            }
            caches++;
            return () -> closedCaches++;
        }

        @Override
        public float[][] nextTokenLogits(long[] ids, int rows, long[] mask, Cache cache) {
            int seq = ids.length / rows;
            stepLengths.add(seq);
            float[][] out = new float[rows][vocab];
            for (int r = 0; r < rows; r++) {
                long last = ids[r * seq + seq - 1];
                out[r][(int) ((last + 1) % vocab)] = 1f;
            }
            return out;
        }

        @Override
        public float[][] logits(long[] ids) {
            throw new UnsupportedOperationException();
        }
    }

    @Test
    void greedyStopsAtTheModelsEndOfSequenceIdAndReturnsIt() {
        Counting model = new Counting(8, false, true);
        long[] out = GenerationLoop.generate(model, new long[] {3, 5}, GenerationConfig.greedy(10));
        assertThat(out).containsExactly(6, 7, 0);
        assertThat(model.stepLengths).containsExactly(2, 1, 1); // the prompt, then one token per step from the cache
        assertThat(model.closedCaches).isEqualTo(model.caches).isEqualTo(1);
    }

    @Test
    void withoutACacheEachStepFeedsTheWholeSequence() {
        Counting model = new Counting(100, false, false);
        long[] out = GenerationLoop.generate(model, new long[] {1, 2}, GenerationConfig.greedy(3));
        assertThat(out).containsExactly(3, 4, 5);
        assertThat(model.stepLengths).containsExactly(2, 3, 4);
    }

    @Test
    void newTokensAreCappedByThePositionsThePromptLeaves() {
        Counting model = new Counting(100, false, true);
        long[] out = GenerationLoop.generate(model, new long[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, GenerationConfig.greedy(50));
        assertThat(out).containsExactly(11, 12);
    }

    @Test
    void aBatchOnAModelWithoutBatchesRunsRowByRowWithEachRowsOwnResult() {
        Counting model = new Counting(8, false, true);
        long[][] out = GenerationLoop.generate(model, new long[][] {{5}, {1, 2}}, GenerationConfig.greedy(4));
        assertThat(out[0]).containsExactly(6, 7, 0);
        assertThat(out[1]).containsExactly(3, 4, 5, 6);
        assertThat(model.caches).isEqualTo(2);
    }

    @Test
    void aBatchOnAModelWithBatchesRunsAsOneLeftPaddedForwardPerStep() {
        Counting model = new Counting(8, true, true);
        long[][] out = GenerationLoop.generate(model, new long[][] {{5}, {1, 2}}, GenerationConfig.greedy(4));
        assertThat(out[0]).containsExactly(6, 7, 0);
        assertThat(out[1]).containsExactly(3, 4, 5, 6);
        assertThat(model.stepLengths).containsExactly(2, 1, 1, 1);
    }

    @Test
    void anOutOfVocabularyIdNamesItsRowBeforeAnyForward() {
        Counting model = new Counting(8, true, true);
        assertThatThrownBy(() -> GenerationLoop.generate(model, new long[][] {{1}, {9}}, GenerationConfig.greedy(2)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("prompt 1 of the batch")
                .hasMessageContaining("9");
        assertThat(model.stepLengths).isEmpty();
    }
}
