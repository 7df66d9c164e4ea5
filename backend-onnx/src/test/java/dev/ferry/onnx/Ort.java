package dev.ferry.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.Map;

/** Test helpers around plain ONNX Runtime: the whole-model reference run and input tensors. */
final class Ort {

    static final OrtEnvironment ENV = OrtEnvironment.getEnvironment();

    private Ort() {
    }

    static OnnxTensor ids(long[] ids) {
        try {
            return OnnxTensor.createTensor(ENV, LongBuffer.wrap(ids), new long[] {1, ids.length});
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Runs the whole model in one session and returns output {@code output} as floats. */
    static float[] whole(Path model, Map<String, OnnxTensor> inputs, String output) {
        return whole(model, inputs, output, OrtSession.SessionOptions.OptLevel.ALL_OPT);
    }

    /** {@link #whole} at optimisation level {@code level} (ORT's default is {@code ALL_OPT}). */
    static float[] whole(Path model, Map<String, OnnxTensor> inputs, String output,
                         OrtSession.SessionOptions.OptLevel level) {
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(level);
            return whole(model, inputs, output, o);
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
    }

    private static float[] whole(Path model, Map<String, OnnxTensor> inputs, String output,
                                 OrtSession.SessionOptions o) {
        try (OrtSession s = ENV.createSession(model.toString(), o);
             OrtSession.Result r = s.run(inputs)) {
            FloatBuffer b = ((OnnxTensor) r.get(output).orElseThrow()).getFloatBuffer();
            float[] out = new float[b.remaining()];
            b.get(out);
            return out;
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Cosine similarity of two vectors. */
    static double cosine(float[] a, float[] b) {
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            na += (double) a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        return dot / Math.sqrt(na * nb);
    }

    static double maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError("lengths " + a.length + " vs " + b.length);
        }
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs((double) a[i] - b[i]));
        }
        return m;
    }
}
