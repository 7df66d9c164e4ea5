package dev.ferry.core.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import org.junit.jupiter.api.Test;

class QuantizationConfigTest {

    private static final ObjectMapper M = new ObjectMapper();

    @Test
    void aConfigWithoutTheEntryIsUnquantized() throws Exception {
        assertThat(QuantizationConfig.of(M.readTree("{\"model_type\": \"llama\"}"))).isEmpty();
    }

    @Test
    void theWrittenEntryReadsBackAsInt8() {
        ObjectNode config = M.createObjectNode();
        config.set(QuantizationConfig.KEY, QuantizationConfig.entry(QuantizationScheme.INT8, List.of("lm_head")));
        assertThat(QuantizationConfig.of(config)).contains(QuantizationScheme.INT8);
        assertThat(config.at("/quantization_config/ignore/0").asText()).isEqualTo("lm_head");
        assertThat(config.at("/quantization_config/config_groups/group_0/weights/strategy").asText())
                .isEqualTo("channel");
    }

    @Test
    void aCompressedTensorsInt8WeightOnlyEntryWithoutFerrysMarkIsInt8() {
        ObjectNode q = QuantizationConfig.entry(QuantizationScheme.INT8, List.of());
        q.remove(QuantizationConfig.FERRY_SCHEME);
        ObjectNode config = M.createObjectNode();
        config.set(QuantizationConfig.KEY, q);
        assertThat(QuantizationConfig.of(config)).contains(QuantizationScheme.INT8);
    }

    @Test
    void otherMethodsAndSchemesAreRefusedByName() throws Exception {
        assertThatThrownBy(() -> QuantizationConfig.of(M.readTree(
                "{\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4}}")))
                .hasMessageContaining("gptq").hasMessageContaining("quantization_config");
        ObjectNode q = QuantizationConfig.entry(QuantizationScheme.INT8, List.of());
        q.remove(QuantizationConfig.FERRY_SCHEME);
        ((ObjectNode) q.at("/config_groups/group_0")).set("input_activations", M.readTree("{\"num_bits\": 8}"));
        ObjectNode config = M.createObjectNode();
        config.set(QuantizationConfig.KEY, q);
        assertThatThrownBy(() -> QuantizationConfig.of(config)).hasMessageContaining("weight-only");
        assertThatThrownBy(() -> QuantizationConfig.of(M.readTree(
                "{\"quantization_config\": {\"ferry_scheme\": \"int3\"}}"))).hasMessageContaining("int3");
    }
}
