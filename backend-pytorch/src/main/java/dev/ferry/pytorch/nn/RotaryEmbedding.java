package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Rotary position embeddings ({@code LlamaRotaryEmbedding} and twins). One table of frequencies ({@link RopeTable})
 * per kind of layer: with one kind, the non-persistent float32 buffers are {@code inv_freq} and
 * {@code original_inv_freq}; with several (Gemma 3's local and global layers), {@code <kind>_inv_freq} and
 * {@code <kind>_original_inv_freq}, as transformers names them. They are computed from the config and materialised on
 * the CPU at construction. forward({@code x}, {@code position_ids [b, s]}[, kind]) returns {@code [cos, sin]}, each
 * {@code [b, s, rotaryDim]} in {@code x}'s dtype.
 */
public class RotaryEmbedding extends DjlModule {

    /** The key of the only table of a model whose layers all rotate alike. */
    public static final String SINGLE = "";

    private final Map<String, RopeTable> tables;

    public RotaryEmbedding(String className, DjlBackend backend, float[] invFreq, float attentionScaling) {
        this(className, backend, Map.of(SINGLE, RopeTable.of(invFreq, attentionScaling)));
    }

    /** One table per layer kind; a map with the single key {@link #SINGLE} gives transformers' plain buffer names. */
    public RotaryEmbedding(String className, DjlBackend backend, Map<String, RopeTable> tables) {
        super(className, backend);
        this.tables = new LinkedHashMap<>(tables);
        this.tables.forEach((kind, table) -> {
            String prefix = kind.isEmpty() ? "" : kind + "_";
            TensorSpec spec = TensorSpec.of(DType.FLOAT32, table.invFreq().length);
            registerBuffer(prefix + "inv_freq", TensorSlot.buffer(spec, false)).set(floats(backend, table.invFreq()));
            registerBuffer(prefix + "original_inv_freq", TensorSlot.buffer(spec, false))
                    .set(floats(backend, table.invFreq()));
        });
    }

    private static dev.ferry.pytorch.DjlTensor floats(DjlBackend backend, float[] v) {
        ByteBuffer b = ByteBuffer.allocateDirect(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return backend.fromBytes(b, TensorSpec.of(DType.FLOAT32, v.length), Device.cpu());
    }

    /** Default RoPE: {@code 1 / theta^(2i / dim)} for a rotary width {@code dim}. */
    public static float[] defaultInvFreq(int dim, double theta) {
        float[] inv = new float[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / dim));
        }
        return inv;
    }

    /** Llama 3's frequency-dependent rescaling of default frequencies ({@code rope_type: llama3}). */
    public static float[] llama3InvFreq(float[] inv, double factor, double lowFreqFactor, double highFreqFactor,
                                        double originalMaxPositions) {
        double lowWavelen = originalMaxPositions / lowFreqFactor;
        double highWavelen = originalMaxPositions / highFreqFactor;
        float[] out = new float[inv.length];
        for (int i = 0; i < inv.length; i++) {
            double wavelen = 2 * Math.PI / inv[i];
            double f = wavelen > lowWavelen ? inv[i] / factor : inv[i];
            if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
                double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                f = (1 - smooth) * f / factor + smooth * f;
            }
            out[i] = (float) f;
        }
        return out;
    }

    @Override
    protected Object forward(Object... args) {
        NDArray x = array(arg(args, 0, "hidden states"));
        NDArray positions = array(arg(args, 1, "position ids"));
        String kind = args.length > 2 ? (String) args[2] : SINGLE;
        RopeTable table = tables.get(kind);
        if (table == null) {
            throw new IllegalArgumentException(className() + " has no rotary table for layer kind '" + kind
                    + "'; it has " + tables.keySet());
        }
        try (NDScope scope = new NDScope()) {
            NDArray inv;
            if (table.longInvFreq() == null) {
                inv = weight(kind.isEmpty() ? "inv_freq" : kind + "_inv_freq");
            } else {
                float[] f = table.frequenciesFor(positions.max().toType(DataType.INT64, false).getLong());
                inv = positions.getManager().create(f, new Shape(f.length));
            }
            NDArray freqs = positions.toType(DataType.FLOAT32, false).expandDims(-1).mul(inv);
            NDArray emb = freqs.concat(freqs, -1);
            NDArray cos = emb.cos();
            NDArray sin = emb.sin();
            if (table.attentionScaling() != 1f) {
                cos = cos.mul(table.attentionScaling());
                sin = sin.mul(table.attentionScaling());
            }
            DataType t = x.getDataType();
            return List.of(output(cos.toType(t, true)), output(sin.toType(t, true)));
        }
    }

    /**
     * {@code x·cos + rotate_half(x)·sin} for {@code x [b, heads, s, d]} and cos/sin {@code [b, s, r]}; when the rotary
     * width {@code r} is less than {@code d}, only the first {@code r} of each head rotate and the rest pass (partial
     * rotary, Phi-3's {@code partial_rotary_factor}).
     */
    public static NDArray apply(NDArray x, NDArray cos, NDArray sin) {
        long d = x.getShape().get(3);
        long r = cos.getShape().get(cos.getShape().dimension() - 1);
        if (r < d) {
            var parts = x.split(new long[] {r}, 3);
            return apply(parts.get(0), cos, sin).concat(parts.get(1), 3);
        }
        NDArray c = cos.expandDims(1);
        NDArray s = sin.expandDims(1);
        long half = d / 2;
        var halves = x.split(new long[] {half}, 3);
        NDArray rotated = halves.get(1).neg().concat(halves.get(0), 3);
        return x.mul(c).add(rotated.mul(s));
    }
}
