package dev.ferry.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/** The graph outputs of one run; owns the ORT results holding them until closed. */
public final class OnnxRunResult implements AutoCloseable {

    private final Map<String, OnnxTensor> outputs;
    private final Set<OrtSession.Result> owners;
    private final Consumer<OrtSession.Result> closer;
    private boolean closed;

    /** {@code closer} closes one owner (and counts it: the model's ledger). */
    OnnxRunResult(Map<String, OnnxTensor> outputs, Set<OrtSession.Result> owners,
                  Consumer<OrtSession.Result> closer) {
        this.closer = closer;
        this.outputs = Collections.unmodifiableMap(new LinkedHashMap<>(outputs));
        this.owners = Collections.newSetFromMap(new IdentityHashMap<>());
        this.owners.addAll(owners);
    }

    public Map<String, OnnxTensor> outputs() {
        return outputs;
    }

    public OnnxTensor get(String name) {
        OnnxTensor t = outputs.get(name);
        if (t == null) {
            throw new IllegalArgumentException("no output '" + name + "'; outputs: " + outputs.keySet());
        }
        return t;
    }

    /** A float output as a Java array, row-major. */
    public float[] floats(String name) {
        FloatBuffer b = get(name).getFloatBuffer();
        float[] out = new float[b.remaining()];
        b.get(out);
        return out;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            owners.forEach(closer);
        }
    }
}
