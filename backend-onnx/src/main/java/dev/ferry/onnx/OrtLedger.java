package dev.ferry.onnx;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Counts the native objects a dispatched model makes and closes (sessions, the weight tensors it supplies to
 * them, the results of runs), from any thread, so that a leak is a number, not a guess. Every such object is
 * made and closed through here.
 */
final class OrtLedger {

    private final AtomicLong sessionsMade = new AtomicLong();
    private final AtomicLong sessionsClosed = new AtomicLong();
    private final AtomicLong tensorsMade = new AtomicLong();
    private final AtomicLong tensorsClosed = new AtomicLong();
    private final AtomicLong resultsMade = new AtomicLong();
    private final AtomicLong resultsClosed = new AtomicLong();

    OrtSession made(OrtSession s) {
        sessionsMade.incrementAndGet();
        return s;
    }

    void close(OrtSession s) {
        try {
            s.close();
        } catch (OrtException e) {
            throw new OnnxModelException.RuntimeFailure("closing a session failed: " + e.getMessage(), e);
        } finally {
            sessionsClosed.incrementAndGet();
        }
    }

    /** A tensor over {@code data} (zero copy when direct), to be closed with {@link #close(OnnxTensor)}. */
    OnnxTensor tensor(OrtEnvironment env, ByteBuffer data, long[] dims, OnnxJavaType type) throws OrtException {
        OnnxTensor t = OnnxTensor.createTensor(env, data, dims, type);
        tensorsMade.incrementAndGet();
        return t;
    }

    void close(OnnxTensor t) {
        t.close();
        tensorsClosed.incrementAndGet();
    }

    OrtSession.Result made(OrtSession.Result r) {
        resultsMade.incrementAndGet();
        return r;
    }

    void close(OrtSession.Result r) {
        r.close();
        resultsClosed.incrementAndGet();
    }

    /** What was made and closed so far. */
    OnnxDispatchReport.OrtObjects counts() {
        return new OnnxDispatchReport.OrtObjects(count(sessionsMade, sessionsClosed), count(tensorsMade, tensorsClosed),
                count(resultsMade, resultsClosed));
    }

    private static OnnxDispatchReport.OrtObjects.Count count(AtomicLong made, AtomicLong closed) {
        long c = closed.get(); // closed first: a count read mid-close never shows more closed than made
        return new OnnxDispatchReport.OrtObjects.Count(made.get(), c);
    }
}
