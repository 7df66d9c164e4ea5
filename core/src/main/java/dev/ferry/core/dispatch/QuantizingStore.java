package dev.ferry.core.dispatch;

import dev.ferry.core.module.Module;
import dev.ferry.core.quant.Int8Quantizer;
import dev.ferry.core.quant.QuantizedLinears;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.WeightsStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Quantizing at load: a checkpoint seen as the quantized model expects it. For every quantized weight of the model
 * ({@link QuantizedLinears#quantizedWeights}) that the checkpoint stores as floats with no {@code weight_scale} beside
 * it, {@code X.weight} reads as its int8 values ({@link Int8Quantizer}) and {@code X.weight_scale} as float32
 * {@code [out, 1]}; every other tensor is the checkpoint's own. A checkpoint already quantized (it has the scales)
 * passes through untouched, so loading it never quantizes again. The view is made before loading: what is placed on
 * a device, kept in host memory or written to an offload folder is the int8 bytes. Scales are kept once computed
 * (4 bytes per output channel); int8 values are computed on every read, so blocks left on disk in a float
 * checkpoint are quantized at each forward: write a quantized checkpoint ({@code ferry quantize}) or give an offload
 * folder for those.
 */
public final class QuantizingStore implements WeightsStore {

    private final WeightsStore checkpoint;
    /** Quantized weight name → its scale's name, and the reverse. */
    private final Map<String, String> scaleOf;
    private final Map<String, String> weightOf;
    private final Set<String> keys;
    private final Map<String, float[]> scales = new ConcurrentHashMap<>();

    private QuantizingStore(WeightsStore checkpoint, Map<String, String> scaleOf) {
        this.checkpoint = checkpoint;
        this.scaleOf = scaleOf;
        this.weightOf = new LinkedHashMap<>();
        scaleOf.forEach((w, s) -> weightOf.put(s, w));
        Set<String> k = new LinkedHashSet<>(checkpoint.keys());
        k.addAll(weightOf.keySet());
        this.keys = Collections.unmodifiableSet(k);
    }

    /**
     * {@code checkpoint} (under {@code root}'s names) as {@code root}'s quantized weights need it; {@code checkpoint}
     * itself when nothing is to be quantized.
     *
     * @throws IllegalArgumentException naming a weight to quantize that the checkpoint stores with another rank, or
     *                                  a weight stored as int8 without its {@code weight_scale}
     */
    public static WeightsStore view(Module root, WeightsStore checkpoint) {
        Map<String, String> toQuantize = new LinkedHashMap<>();
        QuantizedLinears.quantizedWeights(root).forEach((weight, scale) -> {
            if (!checkpoint.contains(weight) || checkpoint.contains(scale)) {
                return; // missing: the loader names it; scaled: already quantized
            }
            TensorSpec stored = checkpoint.spec(weight);
            if (!stored.dtype().isFloatingPoint()) {
                throw new IllegalArgumentException("tensor '" + weight + "' is " + stored + " in the checkpoint but '"
                        + scale + "' is missing: an int8 weight needs its per-channel scales");
            }
            if (stored.rank() != 2) {
                throw new IllegalArgumentException("tensor '" + weight + "' is " + stored
                        + " in the checkpoint; int8 per-channel quantization needs a 2-D [out, in] weight");
            }
            toQuantize.put(weight, scale);
        });
        return toQuantize.isEmpty() ? checkpoint : new QuantizingStore(checkpoint, toQuantize);
    }

    /** The weights this view quantizes (names), in the model's order. */
    public Set<String> quantizedWeights() {
        return Collections.unmodifiableSet(scaleOf.keySet());
    }

    @Override
    public Set<String> keys() {
        return keys;
    }

    @Override
    public boolean contains(String key) {
        return keys.contains(key);
    }

    @Override
    public TensorSpec spec(String key) {
        if (scaleOf.containsKey(key)) {
            return checkpoint.spec(key).withDType(DType.INT8);
        }
        String weight = weightOf.get(key);
        if (weight != null) {
            return TensorSpec.of(DType.FLOAT32, checkpoint.spec(weight).dim(0), 1);
        }
        return checkpoint.spec(key);
    }

    @Override
    public ByteBuffer bytes(String key) {
        if (scaleOf.containsKey(key)) {
            TensorSpec s = checkpoint.spec(key);
            float[] known = scales.get(key);
            Int8Quantizer.Quantized q = Int8Quantizer.quantize(checkpoint.bytes(key), s.dtype(), rows(s), cols(s),
                    known, key);
            scales.putIfAbsent(key, q.scales());
            return q.values().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }
        String weight = weightOf.get(key);
        if (weight != null) {
            float[] s = scalesOf(weight);
            ByteBuffer out = ByteBuffer.allocateDirect(s.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            out.asFloatBuffer().put(s);
            return out.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }
        return checkpoint.bytes(key);
    }

    private float[] scalesOf(String weight) {
        return scales.computeIfAbsent(weight, w -> {
            TensorSpec s = checkpoint.spec(w);
            return Int8Quantizer.scales(checkpoint.bytes(w), s.dtype(), rows(s), cols(s), w);
        });
    }

    private static int rows(TensorSpec s) {
        return Math.toIntExact(s.dim(0));
    }

    private static int cols(TensorSpec s) {
        return Math.toIntExact(s.dim(1));
    }

    /** Whether this view makes {@code key} (a quantized weight or its scales) rather than the checkpoint. */
    private boolean made(String key) {
        return scaleOf.containsKey(key) || weightOf.containsKey(key);
    }

    @Override
    public ByteBuffer bytes(String key, long offset, int length) {
        return made(key) ? WeightsStore.super.bytes(key, offset, length) : checkpoint.bytes(key, offset, length);
    }

    @Override
    public List<ByteBuffer> chunks(String key, int maxChunkBytes) {
        return made(key) ? WeightsStore.super.chunks(key, maxChunkBytes) : checkpoint.chunks(key, maxChunkBytes);
    }

    @Override
    public void read(String key, ByteBuffer dst) {
        if (made(key)) {
            WeightsStore.super.read(key, dst);
        } else {
            checkpoint.read(key, dst);
        }
    }

    @Override
    public boolean streamsFromFile(String key) {
        return !made(key) && checkpoint.streamsFromFile(key);
    }
}
