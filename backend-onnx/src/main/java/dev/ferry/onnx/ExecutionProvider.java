package dev.ferry.onnx;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtProvider;
import ai.onnxruntime.OrtSession;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An ONNX Runtime execution provider instance: CPU, or CUDA / TensorRT on one GPU. Availability is probed by
 * trying to add the provider to session options (the way it fails when a build lacks it), never assumed.
 */
public record ExecutionProvider(Kind kind, int deviceId) {

    public enum Kind { CPU, CUDA, TENSORRT }

    private static final Map<ExecutionProvider, String> PROBES = new ConcurrentHashMap<>();

    public ExecutionProvider {
        Objects.requireNonNull(kind);
        if (kind == Kind.CPU ? deviceId != -1 : deviceId < 0) {
            throw new IllegalArgumentException("bad device id " + deviceId + " for " + kind);
        }
    }

    public static ExecutionProvider cpu() {
        return new ExecutionProvider(Kind.CPU, -1);
    }

    public static ExecutionProvider cuda(int deviceId) {
        return new ExecutionProvider(Kind.CUDA, deviceId);
    }

    public static ExecutionProvider tensorRt(int deviceId) {
        return new ExecutionProvider(Kind.TENSORRT, deviceId);
    }

    /** Whether this ORT build and machine can run the provider (probed once, then remembered). */
    public boolean isAvailable() {
        return probe() == null;
    }

    /** {@code null} when available, else why not. */
    private String probe() {
        String r = PROBES.computeIfAbsent(this, ExecutionProvider::doProbe);
        return r.isEmpty() ? null : r;
    }

    private static String doProbe(ExecutionProvider ep) {
        if (ep.kind == Kind.CPU) {
            return "";
        }
        OrtProvider needed = ep.kind == Kind.CUDA ? OrtProvider.CUDA : OrtProvider.TENSOR_RT;
        if (!OrtEnvironment.getAvailableProviders().contains(needed)) {
            return "this ONNX Runtime build has providers " + OrtEnvironment.getAvailableProviders() + ", not " + needed;
        }
        OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            ep.addTo(o);
            return "";
        } catch (OrtException | RuntimeException e) {
            return "adding " + ep + " failed: " + e.getMessage();
        }
    }

    /**
     * Adds this provider to {@code options} (the CPU provider is always there).
     *
     * @throws OnnxModelException.ProviderUnavailable when the build or the machine lacks it
     */
    void configure(OrtSession.SessionOptions options) {
        String why = probe();
        if (why != null) {
            throw new OnnxModelException.ProviderUnavailable(this + " is not available: " + why
                    + " (the CPU jar com.microsoft.onnxruntime:onnxruntime has only the CPU provider; CUDA and "
                    + "TensorRT need onnxruntime_gpu)", null);
        }
        try {
            addTo(options);
        } catch (OrtException e) {
            throw new OnnxModelException.ProviderUnavailable("adding " + this + " failed: " + e.getMessage(), e);
        }
    }

    /** Throws the named error when unavailable, without touching any session options. */
    void configureCheck() {
        String why = probe();
        if (why != null) {
            throw new OnnxModelException.ProviderUnavailable(this + " is not available: " + why
                    + " (the CPU jar com.microsoft.onnxruntime:onnxruntime has only the CPU provider; CUDA and "
                    + "TensorRT need onnxruntime_gpu)", null);
        }
    }

    private void addTo(OrtSession.SessionOptions o) throws OrtException {
        switch (kind) {
            case CPU -> { }
            case CUDA -> o.addCUDA(deviceId);
            case TENSORRT -> {
                o.addTensorrt(deviceId);
                o.addCUDA(deviceId); // TensorRT hands unsupported ops to CUDA
            }
            default -> throw new IllegalStateException();
        }
    }

    @Override
    public String toString() {
        return kind == Kind.CPU ? "CPUExecutionProvider"
                : (kind == Kind.CUDA ? "CUDAExecutionProvider" : "TensorrtExecutionProvider") + ":" + deviceId;
    }
}
