package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import dev.ferry.pytorch.nn.KVCache;
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
        assertThat(gen.generate(golden.inputIds(), GenerationConfig.greedy(8))).containsExactly(golden.greedy());
        if (!crossesLongRope(fixture)) {
            assertThat(gen.generate(golden.inputIds(), GenerationConfig.greedy(8).withCache(false)))
                    .containsExactly(golden.greedy());
        }
    }

    /**
     * Whether the fixture's greedy generation passes LongRoPE's original length: transformers' golden tokens come from
     * its cache, which it bypasses from there ({@code CausalLM.bypassesCacheAt}); without a cache every step sees
     * the whole sequence, a different computation in transformers too, which the golden does not cover.
     */
    static boolean crossesLongRope(String fixture) {
        return fixture.equals("tiny-phi3-longrope");
    }

    /**
     * A prompt longer than LongRoPE's original length (20 > 12) rotates with the long factors from its first position,
     * and greedy generation from it equals transformers'.
     */
    @Test
    void longRopePromptPastTheOriginalLengthMatchesTransformers() {
        Golden golden = Golden.of("tiny-phi3-longrope", "long_prompt");
        Generator gen = new Generator(load("tiny-phi3-longrope"), backend, Device.cpu());
        assertThat(golden.maxAbsDiff(gen.logits(golden.inputIds()))).isLessThan(TOLERANCE);
        assertThat(gen.generate(golden.inputIds(), GenerationConfig.greedy(8))).containsExactly(golden.greedy());
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
            long token = argmax(gen.nextTokenLogits(golden.inputIds(), 1, null, cache)[0]);
            for (int step = 1; step < 4; step++) {
                assertThat(token).isEqualTo(golden.greedy()[step - 1]);
                token = argmax(gen.nextTokenLogits(new long[] {token}, 1, null, cache)[0]);
            }
            assertThat(token).isEqualTo(golden.greedy()[3]);
            assertThat(cache.length()).isEqualTo(golden.inputIds().length + 3);
            assertThat(new int[] {cache.held(0), cache.held(1), cache.held(2), cache.held(3)})
                    .containsExactly(11, 11, 3, 3);
        }
    }

    static long argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
