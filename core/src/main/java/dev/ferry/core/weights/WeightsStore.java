package dev.ferry.core.weights;

import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
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
     * A read-only little-endian view of the tensor's bytes (position 0, limit {@code byteSize}). Memory stores give
     * their own memory; file stores give a new copy read from the file (or, mapped in place, a view of the mapping).
     * Valid until the store is closed.
     */
    ByteBuffer bytes(String key);

    /**
     * The tensor's bytes as consecutive read-only little-endian views of at most {@code maxChunkBytes}
     * each (rounded down to a multiple of 8, so no element straddles two chunks). This is how a tensor
     * over 2 GiB, which no single {@link ByteBuffer} can hold, is read; stores that can hold such tensors
     * override it. A tensor of zero bytes gives one empty chunk.
     */
    default List<ByteBuffer> chunks(String key, int maxChunkBytes) {
        ByteBuffer all = bytes(key);
        return chunked(all.limit(), maxChunkBytes,
                (offset, length) -> all.slice((int) offset, (int) length).order(ByteOrder.LITTLE_ENDIAN));
    }

    /**
     * Copies the tensor's bytes into {@code dst} from its position ({@code dst} must have room for
     * {@code spec(key).byteSize()}); {@code dst}'s position moves past them. Stores backed by files read with
     * positional reads ({@link FileReads}), never through a mapping, so a file truncated meanwhile is a
     * {@link WeightsFileChangedException}, not a crash. This is how streamed weights fill reused (page-locked) buffers.
     */
    default void read(String key, ByteBuffer dst) {
        dst.put(bytes(key).duplicate());
    }

    /**
     * Whether the tensor comes from a file by reads, so that {@link #bytes} makes a new copy on every call and
     * {@link #read} into a reused buffer is the cheap way to stream it. False for memory stores (whose
     * {@link #bytes} is their own memory) and for files mapped in place.
     */
    default boolean streamsFromFile(String key) {
        return false;
    }

    /** Reads {@code length} bytes at {@code offset} of a tensor as one buffer. */
    @FunctionalInterface
    interface RangeReader {
        ByteBuffer read(long offset, long length);
    }

    /**
     * A tensor of {@code size} bytes as consecutive pieces of at most {@code maxChunkBytes} (rounded down to a
     * multiple of 8, so no element straddles two pieces); at least one piece, empty for an empty tensor.
     */
    static List<ByteBuffer> chunked(long size, int maxChunkBytes, RangeReader reader) {
        int step = maxChunkBytes & ~7;
        if (step <= 0) {
            throw new IllegalArgumentException("chunk size must be at least 8 bytes, got " + maxChunkBytes);
        }
        List<ByteBuffer> out = new ArrayList<>();
        long pos = 0;
        do {
            long len = Math.min(step, size - pos);
            out.add(reader.read(pos, len));
            pos += len;
        } while (pos < size);
        return out;
    }

    @Override
    default void close() {
    }
}
