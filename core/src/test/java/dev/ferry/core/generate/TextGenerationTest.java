package dev.ferry.core.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.config.TokenLimits;
import dev.ferry.core.text.ByteTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Streaming, stopping and stop reasons over a pure-Java model that speaks a script, one token per step. */
class TextGenerationTest {

    /** Row r's next token is {@code scripts[r][step]}; counts batched forwards. */
    static final class Scripted implements LanguageModel {
        final long[][] scripts;
        final int maxPositions;
        final List<Integer> rowsPerForward = new ArrayList<>();

        Scripted(int maxPositions, long[]... scripts) {
            this.scripts = scripts;
            this.maxPositions = maxPositions;
        }

        static final class Steps implements Cache {
            int step;

            @Override
            public void close() {
            }
        }

        @Override
        public TokenLimits tokenLimits() {
            return new TokenLimits(257, maxPositions);
        }

        @Override
        public List<Long> eosTokenIds() {
            return List.of(ByteTokenizer.EOS);
        }

        @Override
        public boolean supportsBatches() {
            return true;
        }

        @Override
        public Cache newCache() {
            return new Steps();
        }

        @Override
        public float[][] nextTokenLogits(long[] ids, int rows, long[] mask, Cache cache) {
            rowsPerForward.add(rows);
            int step = ((Steps) cache).step++;
            float[][] out = new float[rows][257];
            for (int r = 0; r < rows; r++) {
                long[] script = scripts[r];
                out[r][(int) script[Math.min(step, script.length - 1)]] = 1f;
            }
            return out;
        }

        @Override
        public float[][] logits(long[] ids) {
            throw new UnsupportedOperationException();
        }
    }

    private static long[] script(String text, long... tail) {
        long[] ids = ByteTokenizer.ids(text);
        long[] out = Arrays.copyOf(ids, ids.length + tail.length);
        System.arraycopy(tail, 0, out, ids.length, tail.length);
        return out;
    }

    private static TextGeneration generation(Scripted model) {
        return new TextGeneration(model, new ByteTokenizer(), model.eosTokenIds());
    }

    private static final long[] PROMPT = {1, 2, 3};

    @Test
    void tokensAndTextDeltasArriveAsProducedAndConcatenateToTheText() {
        Scripted model = new Scripted(100, script("añb😀c", ByteTokenizer.EOS));
        List<Long> tokens = new ArrayList<>();
        List<String> deltas = new ArrayList<>();
        Completion c = generation(model).generate(PROMPT, GenerationConfig.greedy(50), (t, d) -> {
            tokens.add(t);
            deltas.add(d);
        }, null);
        assertThat(c.text()).isEqualTo("añb😀c");
        assertThat(String.join("", deltas)).isEqualTo(c.text());
        assertThat(tokens).containsExactlyElementsOf(Arrays.stream(c.tokens()).boxed().toList());
        assertThat(c.tokens()).endsWith(ByteTokenizer.EOS);
        assertThat(c.stopReason()).isEqualTo(StopReason.EOS);
        // "ñ" is two tokens: the first releases nothing, the second the whole character
        assertThat(deltas.subList(0, 3)).containsExactly("a", "", "ñ");
        assertThat(c.promptTokens()).containsExactly(PROMPT);
    }

    @Test
    void aStopStringSplitOverTokensEndsGenerationAndIsLeftOutOfTheText() {
        Scripted model = new Scripted(100, script("abc STOP xyz", ByteTokenizer.EOS));
        List<String> deltas = new ArrayList<>();
        Completion c = generation(model).generate(PROMPT, GenerationConfig.builder().maxNewTokens(50)
                .stopStrings("STOP").build(), (t, d) -> deltas.add(d), null);
        assertThat(c.text()).isEqualTo("abc ");
        assertThat(String.join("", deltas)).isEqualTo("abc ");
        assertThat(c.stopReason()).isEqualTo(StopReason.STOP_STRING);
        assertThat(c.tokens()).containsExactly(ByteTokenizer.ids("abc STOP"));
    }

    @Test
    void textThatOnlyBeganLikeAStopStringIsReleasedOnceItDiffers() {
        Scripted model = new Scripted(100, script("ST!", ByteTokenizer.EOS));
        List<String> deltas = new ArrayList<>();
        Completion c = generation(model).generate(PROMPT, GenerationConfig.builder().maxNewTokens(50)
                .stopStrings("STOP").build(), (t, d) -> deltas.add(d), null);
        assertThat(deltas).containsExactly("", "", "ST!", "");
        assertThat(c.text()).isEqualTo("ST!");
        assertThat(c.stopReason()).isEqualTo(StopReason.EOS);
    }

    @Test
    void stopsAtAnyOfTheModelsEndOfSequenceIds() {
        Scripted model = new Scripted(100, script("ab", 'c', 'd'));
        TextGeneration g = new TextGeneration(model, new ByteTokenizer(), List.of(ByteTokenizer.EOS, (long) 'c'));
        Completion c = g.generate(PROMPT, GenerationConfig.greedy(50), null, null);
        assertThat(c.tokens()).containsExactly('a', 'b', 'c');
        assertThat(c.stopReason()).isEqualTo(StopReason.EOS);
        assertThat(c.text()).isEqualTo("abc"); // 'c' is an ordinary byte that this model ends with
    }

    @Test
    void aCancellationFromTheCallerStopsAfterTheCurrentToken() {
        Scripted model = new Scripted(100, script("abcdefgh"));
        Cancellation cancel = new Cancellation();
        AtomicInteger seen = new AtomicInteger();
        Completion c = generation(model).generate(PROMPT, GenerationConfig.greedy(50), (t, d) -> {
            if (seen.incrementAndGet() == 3) {
                cancel.cancel();
            }
        }, cancel);
        assertThat(c.tokens()).containsExactly('a', 'b', 'c');
        assertThat(c.stopReason()).isEqualTo(StopReason.CANCELLED);
        assertThat(c.text()).isEqualTo("abc");
    }

    @Test
    void aPassedDeadlineCancels() {
        Scripted model = new Scripted(100, script("abcdefgh"));
        Completion c = generation(model).generate(PROMPT, GenerationConfig.greedy(50), null,
                Cancellation.withTimeout(0));
        assertThat(c.tokens()).hasSize(1);
        assertThat(c.stopReason()).isEqualTo(StopReason.CANCELLED);
    }

    @Test
    void saysWhetherTheCapOrTheModelsPositionsEndedIt() {
        Scripted model = new Scripted(6, script("abcdefgh"));
        Completion capped = generation(model).generate(PROMPT, GenerationConfig.greedy(2), null, null);
        assertThat(capped.stopReason()).isEqualTo(StopReason.MAX_NEW_TOKENS);
        assertThat(capped.text()).isEqualTo("ab");
        Completion positions = generation(model).generate(PROMPT, GenerationConfig.greedy(10), null, null);
        assertThat(positions.tokens()).hasSize(3);
        assertThat(positions.stopReason()).isEqualTo(StopReason.MAX_POSITIONS);
    }

    @Test
    void rowsOfABatchStreamAndStopOnTheirOwnAndEachGetsWhatItGetsAlone() {
        long[] first = script("hello STOP more", ByteTokenizer.EOS);
        long[] second = script("añother answer", ByteTokenizer.EOS);
        Scripted batch = new Scripted(100, first, second);
        List<String> firstDeltas = new ArrayList<>();
        List<String> secondDeltas = new ArrayList<>();
        Completion[] out = generation(batch).generate(List.of(
                new TextGeneration.Request(PROMPT, GenerationConfig.builder().maxNewTokens(50).stopStrings("STOP")
                        .build(), (t, d) -> firstDeltas.add(d), null),
                new TextGeneration.Request(new long[] {4, 5}, GenerationConfig.greedy(7),
                        (t, d) -> secondDeltas.add(d), null)));
        assertThat(batch.rowsPerForward).first().isEqualTo(2);
        Completion firstAlone = generation(new Scripted(100, first)).generate(PROMPT, GenerationConfig.builder()
                .maxNewTokens(50).stopStrings("STOP").build(), null, null);
        Completion secondAlone = generation(new Scripted(100, second)).generate(new long[] {4, 5},
                GenerationConfig.greedy(7), null, null);
        assertThat(out[0].tokens()).containsExactly(firstAlone.tokens());
        assertThat(out[0].text()).isEqualTo(firstAlone.text()).isEqualTo("hello ");
        assertThat(out[0].stopReason()).isEqualTo(StopReason.STOP_STRING);
        assertThat(out[1].tokens()).containsExactly(secondAlone.tokens());
        assertThat(out[1].text()).isEqualTo(secondAlone.text()).isEqualTo("añothe");
        assertThat(out[1].stopReason()).isEqualTo(StopReason.MAX_NEW_TOKENS);
        assertThat(String.join("", firstDeltas)).isEqualTo(out[0].text());
        assertThat(String.join("", secondDeltas)).isEqualTo(out[1].text());
    }

    @Test
    void withoutATokenizerThereIsNoTextAndStopStringsAreRefused() {
        Scripted model = new Scripted(100, script("ab", ByteTokenizer.EOS));
        TextGeneration g = new TextGeneration(model, null, model.eosTokenIds());
        List<String> deltas = new ArrayList<>();
        Completion c = g.generate(PROMPT, GenerationConfig.greedy(5), (t, d) -> deltas.add(d), null);
        assertThat(c.text()).isNull();
        assertThat(deltas).containsOnlyNulls().hasSize(3);
        assertThatThrownBy(() -> g.generate(PROMPT, GenerationConfig.builder().stopStrings("x").build(), null, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("tokenizer.json");
    }

    @Test
    void theBuilderNamesEveryOptionAndKeepsTransformersDefaults() {
        GenerationConfig c = GenerationConfig.builder().build();
        assertThat(c.maxNewTokens()).isEqualTo(20);
        assertThat(c.doSample()).isFalse();
        assertThat(c.temperature()).isEqualTo(1.0);
        assertThat(c.topK()).isZero();
        assertThat(c.topP()).isEqualTo(1.0);
        assertThat(c.eosTokenIds()).isNull();
        assertThat(c.stopStrings()).isEmpty();
        GenerationConfig s = GenerationConfig.builder().maxNewTokens(5).sample(true).temperature(0.7).topK(40)
                .topP(0.9).seed(7).stopStrings("\n").build();
        assertThat(s).isEqualTo(new GenerationConfig(5, true, 0.7, 40, 0.9, 7, true, null, List.of("\n")));
        assertThat(s.toBuilder().build()).isEqualTo(s);
        assertThatThrownBy(() -> GenerationConfig.builder().stopStrings("").build())
                .hasMessageContaining("stop string");
    }
}
