package dev.ferry.core.weights;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.nio.file.Path;

/**
 * Writes a safetensors file the way the reference implementation does: tensors ordered by decreasing
 * dtype alignment then by name, laid end to end; a compact JSON header with {@code __metadata__} first
 * ({@code {"format":"pt"}} unless changed) and each tensor's {@code dtype}, {@code shape},
 * {@code data_offsets}; the header padded with spaces to a multiple of 8 bytes so every tensor starts
 * aligned.
 *
 * <p>The file is written under a temporary name in the same folder, flushed to disk, then renamed over
 * the target atomically, so a failed or interrupted write never leaves a complete-looking file. Tensors
 * added with {@link #addFrom} are read from their store only while being written, one at a time.
 */
public final class SafetensorsWriter {

    private record Source(TensorSpec spec, Supplier<List<ByteBuffer>> chunks) {
    }

    private final Map<String, String> metadata = new LinkedHashMap<>();
    private final Map<String, Source> tensors = new LinkedHashMap<>();

    public SafetensorsWriter() {
        metadata.put("format", "pt");
    }

    /** Writes every tensor of {@code store} to {@code file}. */
    public static void write(Path file, WeightsStore store) {
        SafetensorsWriter w = new SafetensorsWriter();
        for (String key : store.keys()) {
            w.addFrom(store, key);
        }
        w.write(file);
    }

    /** Sets a {@code __metadata__} entry ({@code format} is {@code pt} unless set here). */
    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /**
     * Adds a tensor whose bytes are {@code bytes}' remaining bytes, in little-endian order; they are not
     * copied, so the buffer must not change until {@link #write}.
     */
    public SafetensorsWriter add(String name, TensorSpec spec, ByteBuffer bytes) {
        if (bytes.remaining() != spec.byteSize()) {
            throw new IllegalArgumentException("tensor '" + name + "' " + spec + " needs " + spec.byteSize()
                    + " bytes, got " + bytes.remaining());
        }
        ByteBuffer view = bytes.slice().order(ByteOrder.LITTLE_ENDIAN);
        return put(name, new Source(spec, () -> List.of(view.duplicate())));
    }

    /** Adds {@code key} of {@code store} under the same name, read when the file is written. */
    public SafetensorsWriter addFrom(WeightsStore store, String key) {
        return addFrom(store, key, key);
    }

    /** Adds {@code key} of {@code store} under {@code name}, read when the file is written. */
    public SafetensorsWriter addFrom(WeightsStore store, String key, String name) {
        TensorSpec spec = store.spec(key);
        return put(name, new Source(spec, () -> store.chunks(key, SafetensorsFile.MAX_CHUNK_BYTES)));
    }

    private SafetensorsWriter put(String name, Source source) {
        if (name.equals("__metadata__")) {
            throw new IllegalArgumentException("'__metadata__' is reserved and cannot name a tensor");
        }
        if (tensors.putIfAbsent(name, source) != null) {
            throw new IllegalArgumentException("tensor '" + name + "' added twice");
        }
        return this;
    }

    /** Writes the file, replacing any file already at {@code file} only once the new one is complete. */
    public void write(Path file) {
        List<Map.Entry<String, Source>> ordered = new ArrayList<>(tensors.entrySet());
        ordered.sort(Comparator.<Map.Entry<String, Source>>comparingInt(e -> -alignmentRank(e.getValue().spec().dtype()))
                .thenComparing(Map.Entry::getKey));
        byte[] header = header(ordered);
        AtomicFiles.write(file, channel -> {
            ByteBuffer prefix = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
            prefix.putLong(header.length).put(header).flip();
            AtomicFiles.writeFully(channel, prefix);
            for (Map.Entry<String, Source> e : ordered) {
                long written = 0;
                for (ByteBuffer chunk : e.getValue().chunks().get()) {
                    written += AtomicFiles.writeFully(channel, chunk.duplicate());
                }
                if (written != e.getValue().spec().byteSize()) {
                    throw new IllegalStateException("tensor '" + e.getKey() + "' " + e.getValue().spec()
                            + " should be " + e.getValue().spec().byteSize() + " bytes but its source gave "
                            + written);
                }
            }
        });
    }

    private byte[] header(List<Map.Entry<String, Source>> ordered) {
        ObjectNode root = Json.MAPPER.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, Source> e : ordered) {
            TensorSpec spec = e.getValue().spec();
            ObjectNode t = root.putObject(e.getKey());
            t.put("dtype", spec.dtype().safetensorsName());
            ArrayNode shape = t.putArray("shape");
            for (long d : spec.shape()) {
                shape.add(d);
            }
            long end = offset + spec.byteSize();
            t.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json;
        try {
            json = Json.COMPACT.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
        int padded = (json.length + 7) & ~7;
        byte[] out = new byte[padded];
        System.arraycopy(json, 0, out, 0, json.length);
        for (int i = json.length; i < padded; i++) {
            out[i] = ' ';
        }
        return out;
    }

    /** Position in the reference implementation's dtype enum, which is in increasing alignment order. */
    private static int alignmentRank(DType dtype) {
        switch (dtype) {
            case BOOL: return 0;
            case UINT8: return 1;
            case INT8: return 2;
            case FLOAT8_E5M2: return 3;
            case FLOAT8_E4M3FN: return 4;
            case INT16: return 5;
            case FLOAT16: return 7;
            case BFLOAT16: return 8;
            case INT32: return 9;
            case FLOAT32: return 11;
            case FLOAT64: return 12;
            case INT64: return 13;
            default: throw new IllegalArgumentException("no alignment rank for " + dtype);
        }
    }
}
