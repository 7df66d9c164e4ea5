package dev.ferry.core.weights;

import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/** The CPU offload store: tensors held as direct (off-heap) little-endian buffers in host memory. */
public final class HostMemoryStore implements WeightsStore {

    private record Stored(TensorSpec spec, ByteBuffer bytes) {
    }

    private final Map<String, Stored> tensors = new LinkedHashMap<>();

    /** Copies {@code bytes} (position to limit, exactly {@code spec.byteSize()}) into a direct buffer. */
    public void put(String name, TensorSpec spec, ByteBuffer bytes) {
        if (bytes.remaining() != spec.byteSize()) {
            throw new IllegalArgumentException("tensor '" + name + "' " + spec + " needs " + spec.byteSize()
                    + " bytes, got " + bytes.remaining());
        }
        ByteBuffer copy = ByteBuffer.allocateDirect(bytes.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(bytes.duplicate()).flip();
        tensors.put(name, new Stored(spec, copy));
    }

    @Override
    public Set<String> keys() {
        return Collections.unmodifiableSet(tensors.keySet());
    }

    @Override
    public TensorSpec spec(String key) {
        return get(key).spec();
    }

    @Override
    public ByteBuffer bytes(String key) {
        return get(key).bytes().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    private Stored get(String key) {
        Stored s = tensors.get(key);
        if (s == null) {
            throw new IllegalArgumentException("no tensor '" + key + "' in host memory store");
        }
        return s;
    }
}
