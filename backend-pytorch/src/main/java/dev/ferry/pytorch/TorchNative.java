package dev.ferry.pytorch;

import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Ferry's native library for the PyTorch backend ({@code libferry_torch.so}, source in {@code src/main/native}): the
 * few libtorch calls DJL 0.36 does not expose, on the {@code torch::Tensor} handles DJL's arrays hold. CUDA streams
 * (copies of blocks prepared ahead run beside the compute: {@link TorchCopyStream}) and fused attention (libtorch's
 * scaled-dot-product attention: one call instead of seven). It is built against the machine's libtorch next to DJL's
 * JNI library ({@code gpu/build-djl-jni.sh}) and found as {@code -Dferry.torchNative=PATH}, in
 * {@code PYTORCH_LIBRARY_PATH}, or on {@code java.library.path}; {@code -Dferry.torchNative=off} turns it off.
 * Without it (CPU wheels, CI) Ferry runs as before: correct, the copies only in order with the compute.
 *
 * <p>Used only when it was built against the libtorch DJL loaded (same version): a handle means a {@code
 * torch::Tensor} of that build's layout.
 */
public final class TorchNative {

    private static final Logger LOG = LoggerFactory.getLogger(TorchNative.class);
    static final String LIBRARY = "ferry_torch";
    private static volatile Boolean loaded;
    /** Fused decoder-layer steps run in this process (each a {@link #decoderQkv} call), for tests. */
    private static final java.util.concurrent.atomic.AtomicLong FUSED_STEPS = new java.util.concurrent.atomic.AtomicLong();

    private TorchNative() {
    }

    /**
     * Whether the library is loaded and matches {@code libtorchVersion} (the engine's, e.g. {@code 2.11.0}); loads it on
     * the first call. Call after DJL's engine is up: the library resolves libtorch's symbols from the process.
     */
    static boolean available(String libtorchVersion) {
        Boolean l = loaded;
        if (l == null) {
            synchronized (TorchNative.class) {
                l = loaded;
                if (l == null) {
                    l = load(libtorchVersion);
                    loaded = l;
                }
            }
        }
        return l;
    }

    /** Whether the library was loaded by an earlier {@link #available} call (the engine's start makes that call). */
    public static boolean loaded() {
        return Boolean.TRUE.equals(loaded);
    }

    private static boolean load(String libtorchVersion) {
        String setting = System.getProperty("ferry.torchNative", "");
        if (setting.equalsIgnoreCase("off") || setting.equalsIgnoreCase("false")) {
            LOG.info("Ferry's native library turned off (-Dferry.torchNative={})", setting);
            return false;
        }
        try {
            if (!setting.isEmpty()) {
                System.load(Path.of(setting).toAbsolutePath().toString());
            } else {
                Path next = libtorchFolder();
                if (next != null && Files.isRegularFile(next.resolve(System.mapLibraryName(LIBRARY)))) {
                    System.load(next.resolve(System.mapLibraryName(LIBRARY)).toAbsolutePath().toString());
                } else {
                    System.loadLibrary(LIBRARY);
                }
            }
        } catch (UnsatisfiedLinkError | SecurityException e) {
            if (!setting.isEmpty()) {
                LOG.warn("Ferry's native library {} could not be loaded ({}): copies run in order with the compute",
                        setting, e.getMessage());
            } else {
                LOG.debug("Ferry's native library not found ({}): copies run in order with the compute",
                        e.getMessage());
            }
            return false;
        }
        String built = torchVersion();
        if (!sameRelease(built, libtorchVersion)) {
            LOG.warn("Ferry's native library was built against libtorch {} but DJL loaded libtorch {}: not used "
                    + "(rebuild it with gpu/build-djl-jni.sh against this libtorch)", built, libtorchVersion);
            return false;
        }
        LOG.info("Ferry's native library loaded (libtorch {}, CUDA streams: {})", built, hasCudaStreams());
        return true;
    }

    private static Path libtorchFolder() {
        String dir = System.getenv("PYTORCH_LIBRARY_PATH");
        return dir == null || dir.isBlank() ? null : Path.of(dir);
    }

    /** {@code 2.11.0} and {@code 2.11.0+cu130} are one release; {@code 2.11.0} and {@code 2.7.1} are not. */
    static boolean sameRelease(String a, String b) {
        if (a == null || b == null) {
            return false;
        }
        return a.split("\\+", 2)[0].equals(b.split("\\+", 2)[0]);
    }

    /**
     * Whether attention on {@code q} runs as one fused call: the library is loaded, {@code q} is on a GPU, and
     * {@code -Dferry.fusedAttention=off} is not set. (On the CPU the separate ops stay: they are what transformers'
     * eager attention computes, to the bit as far as the goldens go.)
     */
    public static boolean fusedAttention(NDArray q) {
        return loaded() && q.getDevice().isGpu() && !"off".equalsIgnoreCase(System.getProperty("ferry.fusedAttention", ""));
    }

    /**
     * Whether a Llama-shaped decoder layer's unmasked step on {@code hidden} runs as two native calls: the library is
     * loaded, {@code hidden} is on a GPU, and {@code -Dferry.fusedLayers=off} is not set.
     */
    public static boolean fusedLayers(NDArray hidden) {
        return loaded() && hidden.getDevice().isGpu()
                && !"off".equalsIgnoreCase(System.getProperty("ferry.fusedLayers", ""));
    }

    /**
     * Whether layers with int8 projections take the fused step, each weight dequantized inside it as {@code Linear}
     * does ({@code weight · weight_scale}); {@code -Dferry.fusedInt8=on}. Off by default: written with its GPU test
     * ({@code Int8CudaTest}) but not yet run on a GPU.
     */
    public static boolean fusedInt8() {
        return "on".equalsIgnoreCase(System.getProperty("ferry.fusedInt8", ""));
    }

    /**
     * Whether a fused layer also takes masked decode steps (one position per row: a left-padded batch's, a sliding
     * window's), the additive mask handed to the fused attention; {@code -Dferry.fusedMaskedSteps=off} leaves them to
     * the Java path.
     */
    public static boolean fusedMaskedSteps() {
        return !"off".equalsIgnoreCase(System.getProperty("ferry.fusedMaskedSteps", ""));
    }

    /**
     * Whether a fused decode step on {@code hidden} may replay CUDA graphs ({@code ferry_torch.cc}'s StepGraphs): fused
     * layers apply, the library was built with CUDA, and {@code -Dferry.cudaGraphs=off} is not set. A graph replays a
     * layer's step as one launch where the eager step issues some twenty ops from the host.
     */
    public static boolean cudaGraphs(NDArray hidden) {
        return fusedLayers(hidden) && hasCudaStreams()
                && !"off".equalsIgnoreCase(System.getProperty("ferry.cudaGraphs", ""));
    }

    /** A layer's CUDA graphs, owned by the caller: {@link StepGraphs#close()} frees them. */
    public static StepGraphs newStepGraphs() {
        return new StepGraphs(newStepGraphsHandle());
    }

    /** How many fused decoder-layer steps ran in this process (for tests and benchmarks). */
    public static long fusedSteps() {
        return FUSED_STEPS.get();
    }

    /** {captures, replays, failed captures} of decode-step CUDA graphs in this process (zeros without the library). */
    public static long[] stepGraphCounts() {
        return loaded() ? stepGraphCounts0() : new long[3];
    }

    /** A layer's decode-step CUDA graphs (native), freed once by {@link #close()}. */
    public static final class StepGraphs implements AutoCloseable {
        private long handle;

        private StepGraphs(long handle) {
            this.handle = handle;
        }

        synchronized long handle() {
            if (handle == 0) {
                throw new IllegalStateException("the layer's CUDA graphs were freed (the model is closed)");
            }
            return handle;
        }

        @Override
        public synchronized void close() {
            if (handle != 0) {
                freeStepGraphs(handle);
                handle = 0;
            }
        }

        @Override
        public String toString() {
            return "StepGraphs";
        }
    }

    /**
     * softmax(q kᵀ · scale) v by libtorch's fused kernel with no mask: q {@code [b, h, s, d]}, k and v
     * {@code [b, kv, t, d]} with h a multiple of kv (grouped heads broadcast, not repeated). The result lives in q's
     * manager and the innermost scope, as any other op's.
     */
    public static NDArray attention(NDArray q, NDArray k, NDArray v, float scale) {
        long h = attention(handle(q), handle(k), handle(v), scale);
        return new PtNDArray((PtNDManager) q.getManager(), h);
    }

    /**
     * The first half of a pre-norm decoder layer's decode step in one call (see {@code ferry_torch.cc}):
     * {@code arrays} = hidden, input norm, q/k/v weights and biases, q/k norms, cos, sin, then the q/k/v weights'
     * int8 scales ({@code null}: none, or not int8).
     * Returns q, k, v, in hidden's manager and the innermost scope.
     */
    public static NDArray[] decoderQkv(NDArray[] arrays, int heads, int kvHeads, int headDim, double eps) {
        return decoderQkv(null, arrays, heads, kvHeads, headDim, eps);
    }

    /**
     * {@link #decoderQkv(NDArray[], int, int, int, double)} replayed from {@code graphs} where a graph is captured
     * for it ({@code null}: eagerly). A replay's q, k and v are the graph's own memory, overwritten by its next replay:
     * the caller consumes them before the layer's next step and does not let another thread step the layer between.
     */
    public static NDArray[] decoderQkv(StepGraphs graphs, NDArray[] arrays, int heads, int kvHeads, int headDim,
                                       double eps) {
        long[] out = decoderQkv(graphs == null ? 0L : graphs.handle(), handles(arrays), heads, kvHeads, headDim, eps);
        FUSED_STEPS.incrementAndGet();
        PtNDManager m = (PtNDManager) arrays[0].getManager();
        return new NDArray[] {new PtNDArray(m, out[0]), new PtNDArray(m, out[1]), new PtNDArray(m, out[2])};
    }

    /**
     * The second half: attention over the cache's keys and values, output projection, residual, post-attention norm,
     * gated SiLU MLP, residual. {@code arrays} = hidden, q, keys, values, o weight and bias, post-attention norm,
     * gate/up/down weights and biases, the additive attention mask {@code [b, 1, s, t]}, then the o/gate/up/down
     * weights' int8 scales ({@code null}: none). The layer's output, in hidden's manager and scope.
     */
    public static NDArray decoderAttentionMlp(NDArray[] arrays, double scale, double eps) {
        return decoderAttentionMlp(null, arrays, scale, eps);
    }

    /** {@link #decoderAttentionMlp(NDArray[], double, double)}, its part after attention replayed from {@code graphs}. */
    public static NDArray decoderAttentionMlp(StepGraphs graphs, NDArray[] arrays, double scale, double eps) {
        long out = decoderAttentionMlp(graphs == null ? 0L : graphs.handle(), handles(arrays), scale, eps);
        return new PtNDArray((PtNDManager) arrays[0].getManager(), out);
    }

    /**
     * A copy of CPU array {@code host} on GPU {@code device}, queued on the calling thread's current stream without
     * waiting ({@code non_blocking}); it belongs to {@code manager}. The caller keeps {@code host}'s memory alive and
     * synchronises the stream before anyone reads the copy.
     */
    static NDArray toDeviceAsync(NDArray host, ai.djl.ndarray.NDManager manager, int device) {
        return new PtNDArray((PtNDManager) manager, toDeviceAsync(handle(host), device));
    }

    private static long[] handles(NDArray[] arrays) {
        long[] h = new long[arrays.length];
        for (int i = 0; i < arrays.length; i++) {
            h[i] = arrays[i] == null ? 0L : handle(arrays[i]);
        }
        return h;
    }

    static long handle(NDArray a) {
        return ((PtNDArray) a).getHandle();
    }

    static native String torchVersion();

    static native boolean hasCudaStreams();

    static native void useSideStream(int device);

    static native void synchronizeCurrentStream(int device);

    static native void recordOnCurrentStream(long tensorHandle);

    private static native long attention(long q, long k, long v, double scale);

    private static native long toDeviceAsync(long hostTensor, int device);

    private static native long[] decoderQkv(long graphs, long[] handles, int heads, int kvHeads, int headDim,
                                            double eps);

    private static native long decoderAttentionMlp(long graphs, long[] handles, double scale, double eps);

    private static native long newStepGraphsHandle();

    private static native void freeStepGraphs(long graphs);

    private static native long[] stepGraphCounts0();
}
