package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Batches of left-padded, masked prompts of different lengths give every row what it gives alone: the same greedy
 * tokens, logits within 1e-5, its own stop, its own seeded samples; the golden prompt's row keeps golden.json's tokens.
 */
class BatchGenerationTest {

    static final double SAME_AS_ALONE = 1e-5;

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
        FidelityTest.backend = backend;
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    /** The golden prompt, two of its prefixes, a longer random one, a one-token one, and a shuffled copy. */
    static long[][] prompts(Golden golden) {
        Random random = new Random(42);
        long[] longer = random.longs(21, 0, 256).toArray();
        long[] shuffled = golden.inputIds().clone();
        for (int i = shuffled.length - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            long t = shuffled[i];
            shuffled[i] = shuffled[j];
            shuffled[j] = t;
        }
        return new long[][] {golden.inputIds(), Arrays.copyOf(golden.inputIds(), 3), longer, {5},
                Arrays.copyOf(golden.inputIds(), 6), shuffled};
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-llama", "tiny-gpt2", "tiny-mistral-sliding", "tiny-qwen2-sliding", "tiny-gemma2"})
    void aBatchOfPromptsOfDifferentLengthsGivesEachRowsGreedyTokensAlone(String fixture) {
        Golden golden = Golden.of(fixture);
        Generator gen = new Generator(FidelityTest.load(fixture), backend, Device.cpu());
        long[][] prompts = prompts(golden);
        GenerationConfig greedy = GenerationConfig.greedy(8).withEos(List.of());

        long[][] batch = gen.generate(prompts, greedy);

        assertThat(batch).hasNumberOfRows(prompts.length);
        assertThat(batch[0]).containsExactly(golden.greedy());
        for (int r = 0; r < prompts.length; r++) {
            assertThat(batch[r]).as("row %d", r).containsExactly(gen.generate(prompts[r], greedy));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-llama", "tiny-gpt2", "tiny-mistral-sliding", "tiny-gemma2"})
    void batchLogitsOfEveryRowEqualThatRowAloneWithin1e5(String fixture) {
        Golden golden = Golden.of(fixture);
        Generator gen = new Generator(FidelityTest.load(fixture), backend, Device.cpu());
        long[][] prompts = prompts(golden);

        float[][][] batch = gen.logits(prompts);

        double max = 0;
        for (int r = 0; r < prompts.length; r++) {
            float[][] alone = gen.logits(prompts[r]);
            assertThat(batch[r]).as("row %d", r).hasNumberOfRows(prompts[r].length);
            for (int i = 0; i < alone.length; i++) {
                for (int v = 0; v < alone[i].length; v++) {
                    max = Math.max(max, Math.abs(batch[r][i][v] - alone[i][v]));
                }
            }
        }
        System.out.printf("%s: max |batch logit - alone| = %.3g%n", fixture, max);
        assertThat(max).isLessThan(SAME_AS_ALONE);
        assertThat(golden.maxAbsDiff(batch[0])).isLessThan(FidelityTest.TOLERANCE);
    }

    @Test
    void eachRowStopsAtItsOwnEndOfSequence() {
        Golden golden = Golden.of("tiny-llama");
        Generator gen = new Generator(FidelityTest.load("tiny-llama"), backend, Device.cpu());
        long[] g = golden.greedy(); // 4, 4, 4, 6, ...: with eos 6 the golden row stops after four tokens
        GenerationConfig stopAt6 = GenerationConfig.greedy(8).withEos(List.of(g[3]));
        long[][] prompts = prompts(golden);

        long[][] batch = gen.generate(prompts, stopAt6);

        assertThat(batch[0]).containsExactly(g[0], g[1], g[2], g[3]);
        for (int r = 1; r < prompts.length; r++) {
            assertThat(batch[r]).as("row %d", r).containsExactly(gen.generate(prompts[r], stopAt6));
        }
        assertThat(Arrays.stream(batch).mapToInt(row -> row.length).max().orElseThrow()).isEqualTo(8);
    }

    @Test
    void seededSamplingGivesEachRowItsSamplesAlone() {
        Generator gen = new Generator(FidelityTest.load("tiny-gpt2"), backend, Device.cpu());
        long[][] prompts = prompts(Golden.of("tiny-gpt2"));
        GenerationConfig sampled = GenerationConfig.sampled(10, 0.8, 40, 0.95, 99).withEos(List.of());

        long[][] batch = gen.generate(prompts, sampled);

        for (int r = 0; r < prompts.length; r++) {
            assertThat(batch[r]).as("row %d", r).containsExactly(gen.generate(prompts[r], sampled));
        }
    }

    @Test
    void aBatchWithoutTheCacheGivesTheTokensOfTheCachedBatch() {
        Generator gen = new Generator(FidelityTest.load("tiny-llama"), backend, Device.cpu());
        long[][] prompts = prompts(Golden.of("tiny-llama"));
        GenerationConfig greedy = GenerationConfig.greedy(6).withEos(List.of());

        assertThat(gen.generate(prompts, greedy.withCache(false))).isDeepEqualTo(gen.generate(prompts, greedy));
    }

    @Test
    void aBatchThroughADispatchedModelWithBlocksOnDiskGivesEachRowsTokensAlone() {
        Golden golden = Golden.of("tiny-llama");
        long[][] prompts = prompts(golden);
        GenerationConfig greedy = GenerationConfig.greedy(8).withEos(List.of());
        Generator plain = new Generator(FidelityTest.load("tiny-llama"), backend, Device.cpu());
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model("tiny-llama"))) {
            CausalLM model = ModelFamilies.build(Fixtures.model("tiny-llama"), backend);
            ModelFamilies.load(model, ckpt, backend, Device.cpu());
            new Dispatcher(backend).dispatch(model, DispatchOptions.of(DispatchedFidelityTest.mixedMap("tiny-llama"))
                    .withPreloadClasses(Set.of("LlamaDecoderLayer")).withOffloadStore(ckpt));
            Generator dispatched = new Generator(model, backend, Device.cpu());

            long[][] batch = dispatched.generate(prompts, greedy);

            for (int r = 0; r < prompts.length; r++) {
                assertThat(batch[r]).as("row %d", r).containsExactly(plain.generate(prompts[r], greedy));
            }
            Dispatcher.remove(model);
        }
    }

    @Test
    void aBadRowIsNamedBeforeAnyForward() {
        Generator gen = new Generator(FidelityTest.load("tiny-llama"), backend, Device.cpu());

        assertThatThrownBy(() -> gen.generate(new long[][] {{1, 2}, {1, 256}}, GenerationConfig.greedy(2)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("prompt 1 of the batch")
                .hasMessageContaining("256");
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-llama", "tiny-gpt2"})
    void batchEmbeddingsOfEveryRowEqualThatRowAloneWithin1e5(String fixture) {
        Generator gen = new Generator(FidelityTest.load(fixture), backend, Device.cpu());
        long[][] prompts = prompts(Golden.of(fixture));

        float[][] batch = gen.embed(prompts);

        double max = 0;
        for (int r = 0; r < prompts.length; r++) {
            float[] alone = gen.embed(new long[][] {prompts[r]})[0];
            assertThat(batch[r]).as("row %d", r).hasSize(64);
            for (int k = 0; k < alone.length; k++) {
                max = Math.max(max, Math.abs(batch[r][k] - alone[k]));
            }
        }
        assertThat(max).isLessThan(SAME_AS_ALONE);
    }

    @Test
    void anEmbeddingIsTheMeanOfTheFinalHiddenStatesOverThePrompt() {
        CausalLM model = FidelityTest.load("tiny-gpt2");
        Generator gen = new Generator(model, backend, Device.cpu());
        long[] prompt = Golden.of("tiny-gpt2").inputIds();

        float[] embedding = gen.embed(new long[][] {prompt})[0];

        try (DjlTensor ids = backend.tokens(prompt, Device.cpu());
             DjlTensor hidden = model.hiddenStates(ids, null)) {
            float[] mean = hidden.array().mean(new int[] {1}).toFloatArray();
            assertThat(embedding).containsExactly(mean, org.assertj.core.data.Offset.offset(1e-6f));
        }
    }
}
