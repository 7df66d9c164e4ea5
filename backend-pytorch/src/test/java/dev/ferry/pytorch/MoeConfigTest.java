package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.config.ConfigException;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** A MoE config that lacks what its family needs, or asks for more experts per token than it has, is named. */
class MoeConfigTest {

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static ObjectNode config(String fixture) {
        return (ObjectNode) ModelConfig.read(Fixtures.model(fixture)).json().deepCopy();
    }

    @Test
    void aQwen3MoeConfigWithoutMoeIntermediateSizeNamesTheField() {
        ObjectNode c = config("tiny-qwen3-moe");
        c.remove("moe_intermediate_size");

        assertThatThrownBy(() -> ModelFamilies.build(new ModelConfig(c), backend))
                .isInstanceOf(ConfigException.class).hasMessageContaining("moe_intermediate_size");
    }

    @Test
    void aMixtralConfigWithoutExpertsNamesTheField() {
        ObjectNode c = config("tiny-mixtral");
        c.remove("num_local_experts");

        assertThatThrownBy(() -> ModelFamilies.build(new ModelConfig(c), backend))
                .isInstanceOf(ConfigException.class).hasMessageContaining("num_local_experts");
    }

    @Test
    void moreExpertsPerTokenThanExpertsIsRefusedByName() {
        ObjectNode c = config("tiny-mixtral");
        c.put("num_experts_per_tok", 5);

        assertThatThrownBy(() -> ModelFamilies.build(new ModelConfig(c), backend))
                .isInstanceOf(ConfigException.class).hasMessageContaining("num_experts_per_tok 5 exceeds the 4 experts");
    }
}
