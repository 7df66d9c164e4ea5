package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.config.ConfigException;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** A model family refuses bad config numbers when it builds, naming the field, before anything is allocated. */
class ConfigAtTheDoorTest {

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    /** The fixture's config with {@code key} set to the JSON literal {@code literal} (a number as written). */
    static ModelConfig with(String fixture, String key, String literal) {
        try {
            ObjectNode json = ((ObjectNode) ModelConfig.read(Fixtures.model(fixture)).json()).deepCopy();
            json.set(key, new ObjectMapper().readTree(literal));
            return new ModelConfig(json);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static void assertRefused(ModelConfig config, String field, String... fragments) {
        assertThatThrownBy(() -> ModelFamilies.build(config, backend)).isInstanceOf(ConfigException.class)
                .hasMessageContaining(field).hasMessageContainingAll(fragments)
                .extracting(e -> ((ConfigException) e).field()).isEqualTo(field);
    }

    @Test
    void zeroAttentionHeadsIsNamedNotDivisionByZero() {
        assertRefused(with("tiny-llama", "num_attention_heads", "0"), "num_attention_heads", "positive");
    }

    @Test
    void layersAbove2To32AreRefusedNotWrapped() {
        // 2^32 + 4 read as an int would be 4, the fixture's own layer count
        assertRefused(with("tiny-llama", "num_hidden_layers", "4294967300"), "num_hidden_layers", "4294967300");
    }

    @Test
    void vocabSizeAbove2To32IsRefusedNotWrapped() {
        assertRefused(with("tiny-llama", "vocab_size", "4294967552"), "vocab_size", "4294967552");
    }

    @Test
    void hiddenSizeAbove2To32IsRefusedNotWrapped() {
        assertRefused(with("tiny-gpt2", "n_embd", "4294967360"), "n_embd", "4294967360");
    }

    @Test
    void negativeLayersAreRefused() {
        assertRefused(with("tiny-llama", "num_hidden_layers", "-1"), "num_hidden_layers", "-1");
    }

    @Test
    void absurdLayerCountIsRefusedUpFront() {
        long start = System.nanoTime();
        assertRefused(with("tiny-llama", "num_hidden_layers", "2147483647"), "num_hidden_layers", "2147483647");
        assertThat((System.nanoTime() - start) / 1e9).isLessThan(1.0);
    }

    @Test
    void absurdHiddenSizeIsRefusedByItsParameterCount() {
        // every number in int range, heads 128 wide, yet about 4.6e18 parameters
        ModelConfig c = with("tiny-llama", "hidden_size", "1073741824");
        ((ObjectNode) c.json()).put("num_attention_heads", 8_388_608).put("num_key_value_heads", 8_388_608)
                .put("head_dim", 128);
        assertRefused(c, "parameters", "hidden size 1073741824");
    }

    @Test
    void keyValueHeadsMustDivideAttentionHeads() {
        assertRefused(with("tiny-llama", "num_key_value_heads", "3"), "num_attention_heads",
                "num_attention_heads (4) must be divisible by num_key_value_heads (3)");
    }

    @Test
    void hiddenSizeMustDivideByHeadsWithoutHeadDim() {
        ModelConfig c = with("tiny-llama", "hidden_size", "66");
        ((ObjectNode) c.json()).remove("head_dim");
        assertRefused(c, "hidden_size", "hidden_size (66) must be divisible by num_attention_heads (4)");
    }

    @Test
    void gpt2EmbeddingMustDivideByHeads() {
        assertRefused(with("tiny-gpt2", "n_head", "5"), "n_embd", "n_embd (64) must be divisible by n_head (5)");
    }

    @Test
    void gpt2NegativePositionsAreRefused() {
        assertRefused(with("tiny-gpt2", "n_positions", "-128"), "n_positions", "-128");
    }

    @Test
    void fractionalSizeIsRefused() {
        assertRefused(with("tiny-llama", "intermediate_size", "128.5"), "intermediate_size", "integer");
    }

    @Test
    void fixturesStillBuild() {
        assertThat(ModelFamilies.build(Fixtures.model("tiny-llama"), backend).numLayers()).isEqualTo(4);
        assertThat(ModelFamilies.build(Fixtures.model("tiny-gpt2"), backend).maxPositions()).isEqualTo(128);
    }
}
