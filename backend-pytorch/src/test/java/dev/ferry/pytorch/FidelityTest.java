package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.ferry.core.generate.Sampler;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import dev.ferry.pytorch.nn.KVCache;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Undispatched on the CPU: logits and greedy tokens equal transformers' (golden.json). */
class FidelityTest {

    static final double TOLERANCE = 1e-4;

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static CausalLM load(String fixture) {
        CausalLM model = ModelFamilies.build(Fixtures.model(fixture), backend);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(fixture))) {
            ModelFamilies.load(model, ckpt, backend, Device.cpu());
        }
        return model;
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-llama", "tiny-gpt2", "tiny-qwen3", "tiny-gemma2", "tiny-gemma3", "tiny-phi3",
            "tiny-phi3-longrope", "tiny-mistral-sliding", "tiny-qwen2-sliding"})
    void logitsAndGreedyTokensMatchTransformers(String fixture) {
        Golden golden = Golden.of(fixture);
        CausalLM model = load(fixture);
        Generator gen = new Generator(model, backend, Device.cpu());
        double diff = golden.maxAbsDiff(gen.logits(golden.inputIds()));
        System.out.printf("%s: max |logit - golden| = %.3g%n", fixture, diff);
        assertThat(diff).isLessThan(TOLERANCE);
        assertGreedyAsGolden(gen, fixture, golden);
    }

    /**
     * Greedy generation gives the same tokens with the KV cache and without it, and they are transformers' golden
     * tokens, all of them, or up to LongRoPE's switch ({@link #goldenTokensBeforeSwitch}).
     */
    static void assertGreedyAsGolden(Generator gen, String fixture, Golden golden) {
        long[] cached = gen.generate(golden.inputIds(), GenerationConfig.greedy(golden.greedy().length));
        assertThat(cached).hasSize(golden.greedy().length)
                .startsWith(Arrays.copyOf(golden.greedy(), goldenTokensBeforeSwitch(fixture, golden)));
        assertThat(gen.generate(golden.inputIds(), GenerationConfig.greedy(golden.greedy().length).withCache(false)))
                .containsExactly(cached);
    }

    /**
     * How many of the golden greedy tokens Ferry reproduces: all, except when generation crosses LongRoPE's
     * {@code original_max_position_embeddings} (tiny-phi3-longrope: 12 - 8 + 1 = 5 tokens are predicted from at most
     * 12 positions). Past it transformers 5.17's generate never recomputes the cache and predicts each token from
     * itself alone, where Ferry recomputes as transformers 4.x did ({@code CausalLM.recomputesCacheAt}); the tokens
     * after the switch are checked against Ferry's uncached generation, whose every step is a full forward (what
     * the {@code long_prompt} golden checks against transformers past 12 positions).
     */
    static int goldenTokensBeforeSwitch(String fixture, Golden golden) {
        try {
            JsonNode config = new ObjectMapper().readTree(Fixtures.model(fixture).resolve("config.json").toFile());
            JsonNode rope = config.path("rope_parameters");
            int prompt = golden.inputIds().length;
            if (!rope.path("rope_type").asText().equals("longrope")
                    || prompt > rope.path("original_max_position_embeddings").asInt()) {
                return golden.greedy().length;
            }
            return Math.min(golden.greedy().length, rope.path("original_max_position_embeddings").asInt() - prompt + 1);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A prompt longer than LongRoPE's original length (20 > 12) rotates with the long factors from its first position,
     * and greedy generation from it, with and without the cache, equals transformers'.
     */
    @Test
    void longRopePromptPastTheOriginalLengthMatchesTransformers() {
        Golden golden = Golden.of("tiny-phi3-longrope", "long_prompt");
        Generator gen = new Generator(load("tiny-phi3-longrope"), backend, Device.cpu());
        assertThat(golden.maxAbsDiff(gen.logits(golden.inputIds()))).isLessThan(TOLERANCE);
        assertThat(gen.generate(golden.inputIds(), GenerationConfig.greedy(8))).containsExactly(golden.greedy());
        assertThat(gen.generate(golden.inputIds(), GenerationConfig.greedy(8).withCache(false)))
                .containsExactly(golden.greedy());
    }

    /**
     * Crossing LongRoPE's original length (8-token prompt, 20 new tokens, switch at 12) the cache is recomputed once
     * with the long factors, so cached greedy tokens equal those of full forwards at every step.
     */
    @Test
    void longRopeCachedGenerationEqualsUncachedAcrossTheSwitch() {
        Golden golden = Golden.of("tiny-phi3-longrope");
        Generator gen = new Generator(load("tiny-phi3-longrope"), backend, Device.cpu());
        long[] uncached = gen.generate(golden.inputIds(), GenerationConfig.greedy(20).withCache(false));
        assertThat(uncached).hasSize(20);
        assertThat(gen.generate(golden.inputIds(), GenerationConfig.greedy(20))).containsExactly(uncached);
    }

    /**
     * In a left-padded batch the longest row picks the factors for all rows; at the switch every row is recomputed,
     * so each row's cached greedy tokens equal the batch's uncached ones.
     */
    @Test
    void longRopeLeftPaddedBatchCachedEqualsUncachedAcrossTheSwitch() {
        Golden golden = Golden.of("tiny-phi3-longrope");
        Generator gen = new Generator(load("tiny-phi3-longrope"), backend, Device.cpu());
        long[][] prompts = {golden.inputIds(), Arrays.copyOfRange(golden.inputIds(), 3, 8), {5, 9, 200}};
        long[][] uncached = gen.generate(prompts, GenerationConfig.greedy(18).withCache(false));
        assertThat(uncached).hasDimensions(3, 18);
        assertThat(gen.generate(prompts, GenerationConfig.greedy(18))).isDeepEqualTo(uncached);
    }

    /** A cache fed by the model directly, without recording its ids, cannot be recomputed and says so. */
    @Test
    void recomputingACacheFedWithoutItsIdsIsANamedError() {
        CausalLM model = load("tiny-phi3-longrope");
        try (KVCache cache = model.newCache();
             DjlTensor input = backend.tokens(new long[] {1, 2, 3}, Device.cpu());
             DjlTensor logits = model.logits(input, cache)) {
            assertThatThrownBy(() -> cache.tokensThen(new long[] {4}, 1))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("seen 3 positions").hasMessageContaining("recorded the ids of 0");
        }
    }

    /**
     * A sliding-window layer's cache keeps only its last window - 1 positions (tiny-qwen2-sliding: layers 2 and 3,
     * window 4) while full layers keep all, and decoding from it still gives transformers' tokens.
     */
    @Test
    void slidingLayersCacheOnlyTheirWindowAndStillDecodeAsTransformers() {
        Golden golden = Golden.of("tiny-qwen2-sliding");
        CausalLM model = load("tiny-qwen2-sliding");
        Generator gen = new Generator(model, backend, Device.cpu());
        try (KVCache cache = model.newCache()) {
            long token = Sampler.argmax(gen.nextTokenLogits(golden.inputIds(), 1, null, cache)[0]);
            for (int step = 1; step < 4; step++) {
                assertThat(token).isEqualTo(golden.greedy()[step - 1]);
                token = Sampler.argmax(gen.nextTokenLogits(new long[] {token}, 1, null, cache)[0]);
            }
            assertThat(token).isEqualTo(golden.greedy()[3]);
            assertThat(cache.length()).isEqualTo(golden.inputIds().length + 3);
            assertThat(new int[] {cache.held(0), cache.held(1), cache.held(2), cache.held(3)})
                    .containsExactly(11, 11, 3, 3);
        }
    }
}
