package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Rotary position embeddings ({@code LlamaRotaryEmbedding} and twins). Non-persistent buffers
 * {@code inv_freq} and {@code original_inv_freq} ({@code [headDim / 2]}, float32) are computed from the
 * config and materialised on the CPU at construction; forward({@code x}, {@code position_ids [b, s]}) returns
 * {@code [cos, sin]}, each {@code [b, s, headDim]} in {@code x}'s dtype.
 */
public class RotaryEmbedding extends DjlModule {

    private final float attentionScaling;

    public RotaryEmbedding(String className, DjlBackend backend, float[] invFreq, float attentionScaling) {
        super(className, backend);
        this.attentionScaling = attentionScaling;
        TensorSpec spec = TensorSpec.of(DType.FLOAT32, invFreq.length);
        registerBuffer("inv_freq", TensorSlot.buffer(spec, false)).set(floats(backend, invFreq));
        registerBuffer("original_inv_freq", TensorSlot.buffer(spec, false)).set(floats(backend, invFreq));
    }

    private static dev.ferry.pytorch.DjlTensor floats(DjlBackend backend, float[] v) {
        ByteBuffer b = ByteBuffer.allocateDirect(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return backend.fromBytes(b, TensorSpec.of(DType.FLOAT32, v.length), Device.cpu());
    }

    /** Default RoPE: {@code 1 / theta^(2i / dim)}. */
    public static float[] defaultInvFreq(int headDim, double theta) {
        float[] inv = new float[headDim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = (float) (1.0 / Math.pow(theta, (2.0 * i) / headDim));
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
        try (NDScope scope = new NDScope()) {
            NDArray inv = weight("inv_freq");
            NDArray freqs = positions.toType(DataType.FLOAT32, false).expandDims(-1).mul(inv);
            NDArray emb = freqs.concat(freqs, -1);
            NDArray cos = emb.cos();
            NDArray sin = emb.sin();
            if (attentionScaling != 1f) {
                cos = cos.mul(attentionScaling);
                sin = sin.mul(attentionScaling);
            }
            DataType t = x.getDataType();
            return List.of(output(cos.toType(t, true)), output(sin.toType(t, true)));
        }
    }

    /** {@code x·cos + rotate_half(x)·sin} for {@code x [b, heads, s, d]} and cos/sin {@code [b, s, d]}. */
    public static NDArray apply(NDArray x, NDArray cos, NDArray sin) {
        NDArray c = cos.expandDims(1);
        NDArray s = sin.expandDims(1);
        long half = x.getShape().get(3) / 2;
        var halves = x.split(new long[] {half}, 3);
        NDArray rotated = halves.get(1).neg().concat(halves.get(0), 3);
        return x.mul(c).add(rotated.mul(s));
    }
}
