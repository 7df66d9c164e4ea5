package dev.ferry.core.dispatch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.testing.MoeTree;
import dev.ferry.core.weights.HostMemoryStore;
import dev.ferry.core.weights.WeightsStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** Checkpoints in transformers 4.x names and in transformers 5's fused expert layout load into one tree. */
class CheckpointNamesTest {

    static final long H = 4;
    static final long I = 6;
    static final int E = 3;

    static Module tree() {
        return MoeTree.mixtral(1, E, 2, H, I);
    }

    /** A float32 tensor whose element j is {@code base + j}. */
    static ByteBuffer counting(long elements, float base) {
        ByteBuffer b = ByteBuffer.allocate((int) elements * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int j = 0; j < elements; j++) {
            b.putFloat(base + j);
        }
        return b.flip();
    }

    /** Every tensor of the tree that is not an expert's, under the tree's own names. */
    static HostMemoryStore dense(Module root) {
        HostMemoryStore store = new HostMemoryStore();
        root.stateDict().forEach((name, slot) -> {
            if (!name.contains(".experts.")) {
                store.put(name, slot.spec(), counting(slot.spec().elementCount(), 0));
            }
        });
        return store;
    }

    static float first(WeightsStore store, String key) {
        return store.bytes(key).order(ByteOrder.LITTLE_ENDIAN).getFloat(0);
    }

    @Test
    void fusedExpertTensorsAreCutIntoEachExpertsSlices() {
        Module root = tree();
        HostMemoryStore ckpt = dense(root);
        ckpt.put("model.layers.0.mlp.experts.gate_up_proj", TensorSpec.of(DType.FLOAT32, E, 2 * I, H),
                counting(E * 2 * I * H, 0));
        ckpt.put("model.layers.0.mlp.experts.down_proj", TensorSpec.of(DType.FLOAT32, E, H, I),
                counting(E * H * I, 10_000));

        WeightsStore view = CheckpointNames.view(root, ckpt);

        // expert 2: gate rows [0, I) of gate_up_proj[2], up rows [I, 2I), down the whole down_proj[2]
        assertThat(view.spec("model.layers.0.mlp.experts.2.w1.weight").shape()).containsExactly(I, H);
        assertThat(first(view, "model.layers.0.mlp.experts.2.w1.weight")).isEqualTo(2 * 2 * I * H);
        assertThat(first(view, "model.layers.0.mlp.experts.2.w3.weight")).isEqualTo(2 * 2 * I * H + I * H);
        assertThat(first(view, "model.layers.0.mlp.experts.1.w2.weight")).isEqualTo(10_000 + H * I);
        assertThat(view.bytes("model.layers.0.mlp.experts.2.w3.weight").remaining()).isEqualTo((int) (I * H * 4));
        CheckpointDispatcher.Match match = CheckpointDispatcher.match(root, ckpt);
        assertThat(match.unexpectedKeys()).isEmpty();
    }

    @Test
    void transformers4NamesLoadUnderTheTreesNames() {
        Module root = tree();
        HostMemoryStore ckpt = dense(root);
        ckpt.remove("model.layers.0.mlp.gate.weight");
        ckpt.put("model.layers.0.block_sparse_moe.gate.weight", TensorSpec.of(DType.FLOAT32, E, H),
                counting(E * H, 7));
        for (int e = 0; e < E; e++) {
            for (String w : new String[] {"w1", "w3"}) {
                ckpt.put("model.layers.0.block_sparse_moe.experts." + e + "." + w + ".weight",
                        TensorSpec.of(DType.FLOAT32, I, H), counting(I * H, 100 * e));
            }
            ckpt.put("model.layers.0.block_sparse_moe.experts." + e + ".w2.weight",
                    TensorSpec.of(DType.FLOAT32, H, I), counting(I * H, 100 * e));
        }

        WeightsStore view = CheckpointNames.view(root, ckpt);

        assertThat(first(view, "model.layers.0.mlp.gate.weight")).isEqualTo(7f);
        assertThat(first(view, "model.layers.0.mlp.experts.2.w2.weight")).isEqualTo(200f);
        CheckpointDispatcher.Match match = CheckpointDispatcher.match(root, ckpt);
        assertThat(match.unexpectedKeys()).isEmpty();
        assertThat(match.keyOf()).hasSize(root.stateDict().size());
    }

    @Test
    void aCheckpointWithTheTreesNamesIsNotWrapped() {
        Module root = tree();
        HostMemoryStore ckpt = new HostMemoryStore();
        root.stateDict().forEach((name, slot) -> ckpt.put(name, slot.spec(), counting(slot.spec().elementCount(), 0)));

        assertThat(CheckpointNames.view(root, ckpt)).isSameAs(ckpt);
    }

    @Test
    void aMissingExpertTensorIsNamedWithTheNamesTried() {
        Module root = tree();
        HostMemoryStore ckpt = new HostMemoryStore();
        root.stateDict().forEach((name, slot) -> {
            if (!name.equals("model.layers.0.mlp.experts.1.w3.weight")) {
                ckpt.put(name, slot.spec(), counting(slot.spec().elementCount(), 0));
            }
        });

        assertThatThrownBy(() -> CheckpointDispatcher.match(root, ckpt))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("model.layers.0.mlp.experts.1.w3.weight")
                .hasMessageContaining("model.layers.0.block_sparse_moe.experts.1.w3.weight")
                .hasMessageContaining("model.layers.0.mlp.experts.gate_up_proj");
    }

    @Test
    void aFusedTensorOfTheWrongShapeIsNamed() {
        Module root = tree();
        HostMemoryStore ckpt = dense(root);
        ckpt.put("model.layers.0.mlp.experts.gate_up_proj", TensorSpec.of(DType.FLOAT32, E + 1, 2 * I, H),
                counting((E + 1) * 2 * I * H, 0));

        assertThatThrownBy(() -> CheckpointNames.view(root, ckpt)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'model.layers.0.mlp.experts.gate_up_proj'");
    }
}
