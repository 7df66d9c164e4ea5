package dev.ferry.core.weights;

import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.util.Set;

/**
 * Named tensors stored as bytes outside any device: a safetensors checkpoint, an offload folder, host
 * memory. Offload hooks read a block's weights from here just before its forward.
 */
public interface WeightsStore extends AutoCloseable {

    /** Full tensor names ({@code model.layers.3.mlp.up_proj.weight}). */
    Set<String> keys();

    default boolean contains(String key) {
        return keys().contains(key);
    }

    /** Shape and dtype of {@code key}; an error naming the key when absent. */
    TensorSpec spec(String key);

    /**
     * A read-only little-endian view of the tensor's bytes (position 0, limit {@code byteSize}); zero copy
     * where the store is memory-mapped. Valid until the store is closed.
     */
    ByteBuffer bytes(String key);

    @Override
    default void close() {
    }
}
