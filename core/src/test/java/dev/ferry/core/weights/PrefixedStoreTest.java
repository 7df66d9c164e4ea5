package dev.ferry.core.weights;

import static dev.ferry.core.weights.TestFiles.le;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import org.junit.jupiter.api.Test;

class PrefixedStoreTest {

    private static HostMemoryStore layers() {
        HostMemoryStore base = new HostMemoryStore();
        base.put("model.layers.1.mlp.weight", TensorSpec.of(DType.INT8, 1), le(new byte[] {1}));
        base.put("model.layers.1.norm.weight", TensorSpec.of(DType.INT8, 2), le(new byte[] {2, 3}));
        base.put("model.layers.10.mlp.weight", TensorSpec.of(DType.INT8, 1), le(new byte[] {10}));
        return base;
    }

    @Test
    void moduleViewHasKeysRelativeToTheModule() {
        PrefixedStore view = PrefixedStore.forModule(layers(), "model.layers.1");
        assertThat(view.prefix()).isEqualTo("model.layers.1.");
        assertThat(view.keys()).containsExactly("mlp.weight", "norm.weight");
    }

    @Test
    void moduleViewReadsThroughToTheFullName() {
        PrefixedStore view = PrefixedStore.forModule(layers(), "model.layers.1");
        assertThat(view.spec("norm.weight")).isEqualTo(TensorSpec.of(DType.INT8, 2));
        assertThat(view.bytes("norm.weight").get(1)).isEqualTo((byte) 3);
        assertThat(view.contains("mlp.weight")).isTrue();
        assertThat(view.contains("10.mlp.weight")).isFalse();
    }

    @Test
    void rootModuleViewSeesEverything() {
        assertThat(PrefixedStore.forModule(layers(), "").keys()).hasSize(3);
    }
}
