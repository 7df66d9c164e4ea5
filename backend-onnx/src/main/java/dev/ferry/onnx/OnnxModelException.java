package dev.ferry.onnx;

/**
 * Base of the named errors of the ONNX backend. Every bad input (a file that is not ONNX, a truncated file, a
 * missing external-data file, a device map naming scopes the graph lacks, an execution provider the ONNX
 * Runtime build lacks, a plan that would cut a preloaded unit) surfaces as one of its subclasses, checked in
 * Java before anything reaches native code.
 */
public class OnnxModelException extends RuntimeException {

    public OnnxModelException(String message) {
        super(message);
    }

    public OnnxModelException(String message, Throwable cause) {
        super(message, cause);
    }

    /** The file does not hold an ONNX {@code ModelProto}. */
    public static final class NotOnnx extends OnnxModelException {
        public NotOnnx(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The file starts as an ONNX model but ends before the model does. */
    public static final class Truncated extends OnnxModelException {
        public Truncated(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** An initializer stored as external data names a file that is missing or shorter than the data. */
    public static final class MissingExternalData extends OnnxModelException {
        public MissingExternalData(String message) {
            super(message);
        }
    }

    /**
     * An initializer's external data {@code location} is absolute, leads out of the model's folder after
     * normalisation, or is a link to a file outside it: refused, never read.
     */
    public static final class ExternalDataOutsideModel extends OnnxModelException {
        public ExternalDataOutsideModel(String message) {
            super(message);
        }
    }

    /** A device map (or a request) names module scopes that the graph does not have. */
    public static final class UnknownScope extends OnnxModelException {
        public UnknownScope(String message) {
            super(message);
        }
    }

    /** An execution provider that this ONNX Runtime build does not have (probed, not assumed). */
    public static final class ProviderUnavailable extends OnnxModelException {
        public ProviderUnavailable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * A plan the core's planner rejects (a map splitting a preload unit, tensors no key covers) or the graph
     * cannot honour (a preload-class unit whose dataflow interleaves with another block's).
     */
    public static final class InvalidPlan extends OnnxModelException {
        public InvalidPlan(String message) {
            super(message);
        }

        public InvalidPlan(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** ONNX Runtime refused a sub-model or failed to run it; the message names the partition. */
    public static final class RuntimeFailure extends OnnxModelException {
        public RuntimeFailure(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
