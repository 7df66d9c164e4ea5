package dev.ferry.core.placement;

import static dev.ferry.core.placement.TestModels.buffer;
import static dev.ferry.core.placement.TestModels.modelForTest;
import static dev.ferry.core.placement.TestModels.ordered;
import static dev.ferry.core.placement.TestModels.sequential;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.DType;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Accelerate's test_compute_module_sizes, test_compute_module_total_buffer_size, and the largest layer. */
class ModuleSizesTest {

    private static final Map<String, Long> MODEL_FOR_TEST_SIZES = ordered(
            "", 236L,
            "linear1", 64L, "linear1.weight", 48L, "linear1.bias", 16L,
            "batchnorm", 72L, "batchnorm.weight", 16L, "batchnorm.bias", 16L,
            "batchnorm.running_mean", 16L, "batchnorm.running_var", 16L, "batchnorm.num_batches_tracked", 8L,
            "linear2", 100L, "linear2.weight", 80L, "linear2.bias", 20L);

    @Test
    void everyModuleAndTensorHasItsBytes() {
        assertThat(ModuleSizes.of(modelForTest()).asMap()).containsExactlyEntriesOf(MODEL_FOR_TEST_SIZES);
    }

    @Test
    void halfDtypeHalvesFloatsButNotIntegerBuffers() {
        Map<String, Long> sizes = ModuleSizes.of(modelForTest(), DType.FLOAT16).asMap();

        assertThat(sizes).containsEntry("", 236L / 2 + 4).containsEntry("batchnorm", 72L / 2 + 4)
                .containsEntry("batchnorm.num_batches_tracked", 8L).containsEntry("linear1.weight", 24L)
                .containsEntry("linear2", 50L);
    }

    @Test
    void dtypeNeverGrowsATensor() {
        assertThat(ModuleSizes.of(modelForTest(), DType.FLOAT64).total()).isEqualTo(236L);
    }

    @Test
    void specialDtypeWinsForItsTensor() {
        ModuleSizes sizes = ModuleSizes.of(modelForTest(), DType.FLOAT16, Map.of("linear2.weight", DType.FLOAT32));

        assertThat(sizes.of("linear2.weight")).isEqualTo(80L);
        assertThat(sizes.of("linear2")).isEqualTo(80L + 10L);
    }

    @Test
    void totalBufferSizeCountsEveryBuffer() {
        Module model = modelForTest();
        buffer(model, "linear1", "test_buffer", 10, 10);
        buffer(model, "", "test_buffer2", 20, 10);

        assertThat(ModuleSizes.of(model).totalBuffers()).isEqualTo(1240L);
        assertThat(ModuleSizes.of(model, DType.FLOAT16).totalBuffers()).isEqualTo(624L);
    }

    @Test
    void tiedTensorCountsOnceAtItsFirstName() {
        ModuleSizes sizes = ModuleSizes.of(TestModels.tinyGpt2());

        assertThat(sizes.of("transformer.wte")).isEqualTo(256L * 64 * 4);
        assertThat(sizes.of("lm_head")).isZero();
        assertThat(sizes.of("lm_head.weight")).isZero();
        assertThat(sizes.total()).isEqualTo(898_560L);
    }

    @Test
    void moduleWithoutTensorsWeighsNothingAndIsNotListed() {
        ModuleSizes sizes = ModuleSizes.of(TestModels.tinyLlama());

        assertThat(sizes.of("model.layers.0.mlp.act_fn")).isZero();
        assertThat(sizes.asMap()).doesNotContainKey("model.layers.0.mlp.act_fn");
    }

    @Test
    void unknownNameIsRejectedWithTheName() {
        assertThatThrownBy(() -> ModuleSizes.of(modelForTest()).of("linear3"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'linear3'");
    }

    @Test
    void tinyLlamaTotalCountsParametersAndBuffers() {
        // embed 65536 + 4 layers x 147968 + norm 256 + rotary buffers 64 + lm_head 65536
        assertThat(ModuleSizes.of(TestModels.tinyLlama()).total()).isEqualTo(723_264L);
    }

    @Test
    void largestLayerIsTheLargestLeafWithoutNoSplitClasses() {
        assertThat(ModuleSizes.of(modelForTest()).largestLayer(Set.of()))
                .isEqualTo(new ModuleSizes.Layer(100L, java.util.List.of("linear2")));
    }

    @Test
    void largestLayerStopsAtNoSplitClassesAndListsTies() {
        Module model = sequential(modelForTest(), modelForTest(), modelForTest());

        assertThat(ModuleSizes.of(model).largestLayer(Set.of("ModelForTest")))
                .isEqualTo(new ModuleSizes.Layer(236L, java.util.List.of("0", "1", "2")));
    }

    @Test
    void largestLayerOfTinyLlamaIsADecoderLayer() {
        ModuleSizes.Layer layer = ModuleSizes.of(TestModels.tinyLlama()).largestLayer(Set.of("LlamaDecoderLayer"));

        assertThat(layer.bytes()).isEqualTo(147_968L);
        assertThat(layer.names()).containsExactly("model.layers.0", "model.layers.1", "model.layers.2",
                "model.layers.3");
    }
}
