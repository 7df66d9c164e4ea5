package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The generator checks a prompt before any forward, so a library caller gets a named error rather than libtorch's
 * {@code index out of range in self} (the model here is on meta: no weight is needed to be refused).
 */
class GeneratorInputTest {

    static DjlBackend backend;
    static CausalLM gpt2;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
        gpt2 = ModelFamilies.build(Fixtures.model("tiny-gpt2"), backend);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    @Test
    void idAtTheVocabularySizeIsNamedWithTheVocabularySize() {
        try (Generator g = new Generator(gpt2, backend, Device.cpu())) {
            assertThatThrownBy(() -> g.generate(new long[] {1, 256}, GenerationConfig.greedy(4)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id 256")
                    .hasMessageContaining("vocab_size is 256");
        }
    }

    @Test
    void negativeIdIsRefusedForLogitsToo() {
        try (Generator g = new Generator(gpt2, backend, Device.cpu())) {
            assertThatThrownBy(() -> g.logits(new long[] {-5})).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("token id -5");
        }
    }

    @Test
    void promptLongerThanThePositionsIsRefusedNotAnsweredWithNothing() {
        try (Generator g = new Generator(gpt2, backend, Device.cpu())) {
            assertThatThrownBy(() -> g.generate(new long[129], GenerationConfig.greedy(4)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("129 tokens")
                    .hasMessageContaining("128 positions");
        }
    }
}
