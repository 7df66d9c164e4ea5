package dev.ferry.core.weights;

import static dev.ferry.core.weights.TestFiles.bytesOf;
import static dev.ferry.core.weights.TestFiles.floats;
import static dev.ferry.core.weights.TestFiles.le;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.testing.CountingPageLocking;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.NoSuchElementException;
import org.junit.jupiter.api.Test;

class HostMemoryStoreTest {

    @Test
    void putCopiesIntoADirectBuffer() {
        byte[] data = floats(1, 2);
        ByteBuffer src = le(data);
        HostMemoryStore store = new HostMemoryStore();
        store.put("w", TensorSpec.of(DType.FLOAT32, 2), src);
        data[0] = 99;

        ByteBuffer view = store.bytes("w");
        assertThat(view.isDirect()).isTrue();
        assertThat(view.isReadOnly()).isTrue();
        assertThat(view.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
        assertThat(view.getFloat(0)).isEqualTo(1f);
        assertThat(src.position()).isZero();
        assertThat(store.totalBytes()).isEqualTo(8);
    }

    @Test
    void putRefusesBytesOfTheWrongSize() {
        HostMemoryStore store = new HostMemoryStore();
        assertThatThrownBy(() -> store.put("w", TensorSpec.of(DType.FLOAT32, 3), le(floats(1))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs 12 bytes, got 4");
    }

    @Test
    void copyOfTakesASubsetOfAnotherStore() {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(TestFiles.fixtures().resolve("tiny-llama"))) {
            List<String> keys = List.of("model.norm.weight", "lm_head.weight");
            HostMemoryStore store = HostMemoryStore.copyOf(ckpt, keys);
            assertThat(store.keys()).containsExactlyElementsOf(keys);
            assertThat(store.spec("lm_head.weight")).isEqualTo(ckpt.spec("lm_head.weight"));
            assertThat(bytesOf(store.bytes("lm_head.weight"))).isEqualTo(bytesOf(ckpt.bytes("lm_head.weight")));
            assertThat(store.totalBytes()).isEqualTo(64 * 4 + 256 * 64 * 4);
        }
    }

    @Test
    void removedTensorIsGone() {
        HostMemoryStore store = new HostMemoryStore();
        store.put("w", TensorSpec.of(DType.INT8, 1), le(new byte[] {1}));
        assertThat(store.remove("w")).isTrue();
        assertThat(store.contains("w")).isFalse();
        assertThatThrownBy(() -> store.bytes("w")).isInstanceOf(NoSuchElementException.class)
                .hasMessageContaining("'w'");
    }

    @Test
    void eachTensorIsPageLockedFromPutUntilRemovedOrClosed() {
        CountingPageLocking locking = new CountingPageLocking();
        HostMemoryStore store = new HostMemoryStore(locking);
        store.put("a", TensorSpec.of(DType.FLOAT32, 2), le(floats(1, 2)));
        store.put("b", TensorSpec.of(DType.FLOAT32, 3), le(floats(1, 2, 3)));
        assertThat(locking.buffers()).hasSize(2);
        assertThat(store.lockedBytes()).isEqualTo(20);
        store.put("a", TensorSpec.of(DType.FLOAT32, 2), le(floats(5, 6))); // the replaced buffer is unlocked
        assertThat(locking.buffers()).hasSize(2);
        store.remove("b");
        assertThat(locking.buffers()).hasSize(1);
        store.close();
        assertThat(locking.buffers()).isEmpty();
    }

    @Test
    void heldBuffersStartOnAPageSoThatLockingOneNeverLocksAnothersPage() {
        HostMemoryStore store = new HostMemoryStore();
        store.put("a", TensorSpec.of(DType.FLOAT32, 3), le(floats(1, 2, 3)));
        store.put("b", TensorSpec.of(DType.FLOAT32, 3), le(floats(4, 5, 6)));
        for (String k : List.of("a", "b")) {
            assertThat(store.bytes(k).alignmentOffset(0, dev.ferry.core.tensor.PageLocking.PAGE)).isZero();
        }
        assertThat(store.bytes("b").getFloat(8)).isEqualTo(6f);
    }
}
