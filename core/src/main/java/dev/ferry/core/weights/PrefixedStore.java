package dev.ferry.core.weights;

import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A view of another store with keys relative to a prefix, as Accelerate's {@code PrefixedDataset} gives
 * an offload hook the weights of one module: with prefix {@code model.layers.3.}, key
 * {@code mlp.up_proj.weight} reads {@code model.layers.3.mlp.up_proj.weight}. Closing the view does not
 * close the store under it.
 */
public final class PrefixedStore implements WeightsStore {

    private final WeightsStore base;
    private final String prefix;

    public PrefixedStore(WeightsStore base, String prefix) {
        this.base = base;
        this.prefix = prefix;
    }

    /** The weights of module {@code moduleName} ("" for the root): prefix {@code moduleName + "."}. */
    public static PrefixedStore forModule(WeightsStore base, String moduleName) {
        return new PrefixedStore(base, moduleName.isEmpty() ? "" : moduleName + ".");
    }

    public String prefix() {
        return prefix;
    }

    public WeightsStore base() {
        return base;
    }

    /** The keys of the base store under the prefix, with the prefix removed. */
    @Override
    public Set<String> keys() {
        Set<String> out = new LinkedHashSet<>();
        for (String k : base.keys()) {
            if (k.startsWith(prefix)) {
                out.add(k.substring(prefix.length()));
            }
        }
        return Collections.unmodifiableSet(out);
    }

    @Override
    public boolean contains(String key) {
        return base.contains(prefix + key);
    }

    @Override
    public TensorSpec spec(String key) {
        return base.spec(prefix + key);
    }

    @Override
    public ByteBuffer bytes(String key) {
        return base.bytes(prefix + key);
    }

    @Override
    public ByteBuffer bytes(String key, long offset, int length) {
        return base.bytes(prefix + key, offset, length);
    }

    @Override
    public List<ByteBuffer> chunks(String key, int maxChunkBytes) {
        return base.chunks(prefix + key, maxChunkBytes);
    }

    @Override
    public void read(String key, ByteBuffer dst) {
        base.read(prefix + key, dst);
    }

    @Override
    public boolean streamsFromFile(String key) {
        return base.streamsFromFile(prefix + key);
    }

    @Override
    public String toString() {
        return "PrefixedStore['" + prefix + "' of " + base + "]";
    }
}
