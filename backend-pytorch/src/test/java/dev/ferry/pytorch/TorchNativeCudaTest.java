package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ferry.core.generate.Sampler;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.ModelFamilies;
import dev.ferry.pytorch.nn.Attention;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Ferry's native library on CUDA: blocks prepared ahead are copied on a stream of their own and give, step after
 * step, exactly what resident blocks give; fused attention equals the separate ops. Skipped without a GPU; where the
 * harness built the library ({@code -Dferry.requireTorchNative=true}) its absence is a failure, not a skip.
 */
@Tag("gpu")
class TorchNativeCudaTest {

    static final Device GPU0 = Device.accelerator(0);
    static final Device CPU = Device.cpu();
    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static void requireNative() {
        assumeTrue(backend.gpuCount() >= 1, "needs a CUDA GPU");
        if (!Boolean.getBoolean("ferry.requireTorchNative")) {
            assumeTrue(TorchNative.loaded(), "Ferry's native library is not on this machine");
        }
    }

    @Test
    void theNativeLibraryGivesTheGpuACopyStream() {
        requireNative();
        assertThat(TorchNative.loaded()).isTrue();
        assertThat(TorchNative.hasCudaStreams()).isTrue();
        assertThat(backend.copyStream(GPU0)).isInstanceOf(TorchCopyStream.class);
        assertThat(backend.copyStream(CPU)).isSameAs(dev.ferry.core.tensor.CopyStream.NONE);
    }

    private static NDArray random(NDManager m, DataType type, long... shape) {
        return m.randomNormal(new Shape(shape)).toType(type, false);
    }

    private static double fusedAgainstSeparateOps(DataType type) {
        try (NDManager m = backend.manager(GPU0).newSubManager()) {
            int heads = 8;
            int kvHeads = 2;
            NDArray q = random(m, type, 2, heads, 1, 16);
            NDArray k = random(m, type, 2, kvHeads, 9, 16);
            NDArray v = random(m, type, 2, kvHeads, 9, 16);
            float scale = 0.25f;
            NDArray fused = TorchNative.attention(q, k, v, scale);
            NDArray separate = Attention.scaledDotProduct(q, Attention.repeatKv(k, heads / kvHeads),
                    Attention.repeatKv(v, heads / kvHeads), null, scale);
            assertThat(fused.getShape()).isEqualTo(separate.getShape());
            assertThat(fused.getDataType()).isEqualTo(type);
            return fused.toType(DataType.FLOAT32, false).sub(separate.toType(DataType.FLOAT32, false)).abs().max()
                    .getFloat();
        }
    }

    @Test
    void fusedAttentionEqualsTheSeparateOpsInFloat32() {
        requireNative();
        double diff = fusedAgainstSeparateOps(DataType.FLOAT32);
        System.out.printf("fused attention float32: max |fused - separate| = %.3g%n", diff);
        assertThat(diff).isLessThan(1e-5);
    }

    @Test
    void fusedAttentionEqualsTheSeparateOpsInFloat16WithinHalfPrecision() {
        requireNative();
        double diff = fusedAgainstSeparateOps(DataType.FLOAT16);
        System.out.printf("fused attention float16: max |fused - separate| = %.3g%n", diff);
        assertThat(diff).isLessThan(4e-3); // a few float16 ulps of values of order 1
    }

    @Test
    void blocksCopiedWaitingForEachTensorGiveExactlyTheResidentTokensAndLogits() {
        requireNative();
        DecodeSteps.withProperty("ferry.asyncCopies", "off", () -> {
            blocksCopiedOnTheCopyStreamGiveExactlyTheResidentTokensAndLogits();
            return null;
        });
    }

    @Test
    void blocksCopiedOnTheCopyStreamGiveExactlyTheResidentTokensAndLogits() {
        requireNative();
        Golden golden = Golden.of("tiny-llama");
        Path dir = Fixtures.model("tiny-llama");
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed_tokens", GPU0);
        m.put("model.layers.0", CPU);
        m.put("model.layers.1", CPU);
        m.put("model.layers.2", GPU0);
        m.put("model.layers.3", CPU);
        m.put("model.norm", GPU0);
        m.put("model.rotary_emb", GPU0);
        m.put("lm_head", CPU);
        GenerationConfig greedy = GenerationConfig.greedy(48);
        long[] resident;
        float[][] residentLogits;
        try (CudaGoldenTest.Loaded l = CudaGoldenTest.load(backend, dir, ModelFamilies.build(dir, backend),
                DeviceMap.single(GPU0), Set.of(), 0)) {
            Generator gen = new Generator(l.model(), backend, GPU0);
            resident = gen.generate(golden.inputIds(), greedy);
            residentLogits = gen.logits(golden.inputIds());
        }
        try (CudaGoldenTest.Loaded l = CudaGoldenTest.load(backend, dir, ModelFamilies.build(dir, backend), DeviceMap.of(m),
                Set.of("LlamaDecoderLayer"), 3)) {
            Generator gen = new Generator(l.model(), backend, GPU0);
            int arrays = backend.liveArrayCount();
            for (int rep = 0; rep < 5; rep++) {
                assertThat(gen.generate(golden.inputIds(), greedy)).as("rep %d", rep).containsExactly(resident);
                float[][] logits = gen.logits(golden.inputIds());
                for (int i = 0; i < logits.length; i++) {
                    assertThat(logits[i]).as("rep %d position %d", rep, i).containsExactly(residentLogits[i]);
                }
            }
            // blocks prepared ahead may be in flight: at most three blocks' tensors (9 each) beyond the start
            assertThat(backend.liveArrayCount() - arrays).isBetween(-27, 27);
        }
    }

    /** {@code fixture} all on gpu0 with its decoder layer as preload class, so that its layers take the fused step. */
    private static CudaGoldenTest.Loaded onGpu0WithLayerUnits(String fixture) {
        Path dir = Fixtures.model(fixture);
        return CudaGoldenTest.load(backend, dir, ModelFamilies.build(dir, backend), DeviceMap.single(GPU0),
                Set.of(DispatchedFidelityTest.blockClass(fixture)), 0);
    }

    // tiny-mistral-sliding: a window of 4 under an 8-token prompt masks every layer's step (the mask goes to the fused
    // attention); tiny-qwen2-sliding: two full layers unmasked, two sliding ones masked
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"tiny-llama", "tiny-qwen3", "tiny-qwen2-sliding",
        "tiny-mistral-sliding"})
    void fusedDecodeStepsGiveWhatTheJavaLayersGive(String fixture) {
        requireNative();
        Golden golden = Golden.of(fixture);
        try (CudaGoldenTest.Loaded l = onGpu0WithLayerUnits(fixture)) {
            Generator gen = new Generator(l.model(), backend, GPU0);
            long fusedBefore = TorchNative.fusedSteps();
            float[][] fused = DecodeSteps.greedyLogits(gen, golden.inputIds(), 24);
            assertThat(TorchNative.fusedSteps() - fusedBefore).as("fused layer steps").isGreaterThanOrEqualTo(24);
            float[][] java = DecodeSteps.withProperty("ferry.fusedLayers", "off",
                    () -> DecodeSteps.greedyLogits(gen, golden.inputIds(), 24));
            double max = DecodeSteps.maxDiff(fused, java);
            System.out.printf("%s fused decode steps: max |fused - java| = %.3g%n", fixture, max);
            assertThat(max).isLessThan(1e-4);
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"tiny-llama", "tiny-qwen3", "tiny-qwen2-sliding"})
    void decodeStepsReplayedFromCudaGraphsGiveWhatTheEagerStepsGive(String fixture) {
        requireNative();
        Golden golden = Golden.of(fixture);
        try (CudaGoldenTest.Loaded l = onGpu0WithLayerUnits(fixture)) {
            Generator gen = new Generator(l.model(), backend, GPU0);
            long[] before = TorchNative.stepGraphCounts();
            float[][] graphed = DecodeSteps.greedyLogits(gen, golden.inputIds(), 24);
            long[] after = TorchNative.stepGraphCounts();
            float[][] eager = DecodeSteps.withProperty("ferry.cudaGraphs", "off",
                    () -> DecodeSteps.greedyLogits(gen, golden.inputIds(), 24));
            double max = DecodeSteps.maxDiff(graphed, eager);
            System.out.printf("%s decode steps from CUDA graphs: %d captures, %d replays, max |graphed - eager| = %.3g%n",
                    fixture, after[0] - before[0], after[1] - before[1], max);
            assertThat(after[2]).as("failed captures").isEqualTo(before[2]);
            // each layer's two parts captured once (at its second decode step), then replayed at every later one
            assertThat(after[1] - before[1]).as("replays").isGreaterThanOrEqualTo(20 * (after[0] - before[0]));
            assertThat(after[0] - before[0]).as("captures").isPositive();
            assertThat(max).isLessThan(1e-4);
        }
    }

    /**
     * Greedy decode of a left-padded batch (the golden prompt and a shorter prefix of it) with the KV cache: every
     * step's logits of every row, as {@code nextTokenLogits} returns them.
     */
    private static float[][][] paddedBatchDecode(Generator gen, long[] prompt, int steps) {
        int rows = 2;
        int shorter = prompt.length / 2;
        int width = prompt.length;
        long[] ids = new long[rows * width];
        java.util.List<Long> mask = new java.util.ArrayList<>();
        long[][] masks = new long[rows][];
        System.arraycopy(prompt, 0, ids, 0, width);
        System.arraycopy(prompt, 0, ids, width + (width - shorter), shorter);
        masks[0] = new long[width];
        java.util.Arrays.fill(masks[0], 1L);
        masks[1] = new long[width];
        java.util.Arrays.fill(masks[1], width - shorter, width, 1L);
        float[][][] out = new float[steps][][];
        try (var cache = gen.newCache()) {
            float[][] last = gen.nextTokenLogits(ids, rows, flat(masks), cache);
            for (int i = 0; i < steps; i++) {
                long[] next = new long[rows];
                for (int r = 0; r < rows; r++) {
                    next[r] = Sampler.argmax(last[r]);
                    masks[r] = java.util.Arrays.copyOf(masks[r], masks[r].length + 1);
                    masks[r][masks[r].length - 1] = 1L;
                }
                last = gen.nextTokenLogits(next, rows, flat(masks), cache);
                out[i] = last;
            }
        }
        return out;
    }

    private static long[] flat(long[][] rows) {
        long[] out = new long[rows.length * rows[0].length];
        for (int r = 0; r < rows.length; r++) {
            System.arraycopy(rows[r], 0, out, r * rows[r].length, rows[r].length);
        }
        return out;
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"tiny-llama", "tiny-mistral-sliding"})
    void aPaddedBatchsMaskedDecodeStepsFusedGiveWhatTheJavaLayersGive(String fixture) {
        requireNative();
        Golden golden = Golden.of(fixture);
        try (CudaGoldenTest.Loaded l = onGpu0WithLayerUnits(fixture)) {
            Generator gen = new Generator(l.model(), backend, GPU0);
            long fusedBefore = TorchNative.fusedSteps();
            float[][][] fused = paddedBatchDecode(gen, golden.inputIds(), 12);
            long fusedSteps = TorchNative.fusedSteps() - fusedBefore;
            float[][][] java = DecodeSteps.withProperty("ferry.fusedMaskedSteps", "off",
                    () -> paddedBatchDecode(gen, golden.inputIds(), 12));
            double max = 0;
            for (int i = 0; i < fused.length; i++) {
                max = Math.max(max, DecodeSteps.maxDiff(fused[i], java[i]));
            }
            System.out.printf("%s padded batch, masked decode steps: %d fused layer steps, max |fused - java| = %.3g%n",
                    fixture, fusedSteps, max);
            assertThat(fusedSteps).as("fused layer steps").isGreaterThanOrEqualTo(12);
            assertThat(max).isLessThan(1e-4);
        }
    }

    /** A backend of its own loads tiny-llama on gpu0, decodes {@code rounds} times, then closes (freeing its graphs). */
    private static long[] decodeRoundsOnAFreshBackend(int rounds) {
        Golden golden = Golden.of("tiny-llama");
        Path dir = Fixtures.model("tiny-llama");
        long[] out = new long[4]; // GPU bytes after the first round, after the last; captures in between; replays
        DjlBackend own = new DjlBackend();
        try (CudaGoldenTest.Loaded l = CudaGoldenTest.load(own, dir, ModelFamilies.build(dir, own),
                DeviceMap.single(GPU0), Set.of("LlamaDecoderLayer"), 0)) {
            Generator gen = new Generator(l.model(), own, GPU0);
            DecodeSteps.greedyLogits(gen, golden.inputIds(), 8);
            out[0] = CudaGoldenTest.usedGpuBytes();
            long[] first = TorchNative.stepGraphCounts();
            for (int i = 1; i < rounds; i++) {
                DecodeSteps.greedyLogits(gen, golden.inputIds(), 8);
            }
            out[1] = CudaGoldenTest.usedGpuBytes();
            long[] last = TorchNative.stepGraphCounts();
            out[2] = last[0] - first[0];
            out[3] = last[1] - first[1];
        } finally {
            own.close();
        }
        return out;
    }

    @Test
    void cudaGraphsTakeNoMoreMemoryOverRepeatedDecodesAndGiveItBackWithTheirBackend() {
        requireNative();
        decodeRoundsOnAFreshBackend(2); // warm-up: the CUDA context, cuBLAS workspaces of the capture stream stay
        long start = CudaGoldenTest.usedGpuBytes();
        long[] r = decodeRoundsOnAFreshBackend(6);
        long end = CudaGoldenTest.usedGpuBytes();
        System.out.printf("cuda graphs memory: start %d, after the first decode %d, after 6 %d, after close %d bytes; "
                + "%d captures and %d replays after the first decode%n", start, r[0], r[1], end, r[2], r[3]);
        assertThat(r[2]).as("captures after the first decode").isZero();
        assertThat(r[3]).as("replays after the first decode").isGreaterThanOrEqualTo(5L * 8 * 2 * 4);
        assertThat(r[1]).as("GPU bytes after 6 decodes").isLessThanOrEqualTo(r[0]);
        assertThat(end).as("GPU bytes after the backend closed").isLessThanOrEqualTo(start);
    }
}
