package dev.ferry.core.quant;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.stream.IntStream;

/**
 * Symmetric per-output-channel int8: for each row {@code r} of a weight {@code [rows, cols]},
 * {@code scale[r] = max|w[r, :]| / 127} and {@code q[r, c] = round(w[r, c] / scale[r])} (half to even, as
 * {@code torch.round}), so {@code |w - q · scale| ≤ scale / 2} for every element and the largest element of each row
 * is exact up to float rounding. Values stay in {@code [-127, 127]} (the range is symmetric: -128 is never used). A
 * row of zeros gets scale 0 and zeros; a row whose largest |w| divided by 127 underflows float32 likewise (its values
 * are below 1.8e-43: zero is within scale/2 of none of them, but within 1e-43). Non-finite weights are refused, naming
 * the tensor and the row.
 */
public final class Int8Quantizer {

    /** The largest magnitude of a quantized value. */
    public static final int QMAX = 127;

    /** Rows per parallel task: small tensors are quantized on the caller's thread. */
    private static final long PARALLEL_ELEMENTS = 1 << 18;

    private Int8Quantizer() {
    }

    /** Quantized values (row-major int8, little-endian buffer of {@code rows × cols} bytes) and one scale per row. */
    public record Quantized(ByteBuffer values, float[] scales) {
    }

    /** Scale of a row whose largest magnitude is {@code absMax}. */
    public static float scaleOf(double absMax) {
        return (float) (absMax / QMAX);
    }

    /**
     * The per-row scales of {@code stored} ({@code [rows, cols]} elements of {@code dtype}, little-endian), read
     * without quantizing: what {@code weight_scale} holds.
     *
     * @param name the tensor, for errors
     */
    public static float[] scales(ByteBuffer stored, DType dtype, int rows, int cols, String name) {
        Reader in = reader(stored, dtype, rows, cols, name);
        float[] scales = new float[rows];
        rowsOf(rows, cols).forEach(r -> scales[r] = scaleOf(absMax(in, r, cols, name)));
        return scales;
    }

    /** Quantizes {@code stored} ({@code [rows, cols]} elements of {@code dtype}, little-endian). */
    public static Quantized quantize(ByteBuffer stored, DType dtype, int rows, int cols, String name) {
        return quantize(stored, dtype, rows, cols, null, name);
    }

    /**
     * Quantizes {@code stored} with {@code scales} from {@link #scales} of the same bytes when given (not recomputed),
     * else computed here.
     */
    public static Quantized quantize(ByteBuffer stored, DType dtype, int rows, int cols, float[] scales, String name) {
        Reader in = reader(stored, dtype, rows, cols, name);
        float[] s = scales != null ? scales : new float[rows];
        if (s.length != rows) {
            throw new IllegalArgumentException("tensor '" + name + "': " + s.length + " scales for " + rows + " rows");
        }
        ByteBuffer out = ByteBuffer.allocateDirect(Math.multiplyExact(rows, cols)).order(ByteOrder.LITTLE_ENDIAN);
        rowsOf(rows, cols).forEach(r -> {
            if (scales == null) {
                s[r] = scaleOf(absMax(in, r, cols, name));
            }
            double scale = s[r];
            int base = r * cols;
            for (int c = 0; c < cols; c++) {
                out.put(base + c, scale == 0 ? 0 : quantizeValue(in.get(base + c), scale));
            }
        });
        return new Quantized(out, s);
    }

    /** One value: {@code round(w / scale)} half to even, clamped to ±127. */
    static byte quantizeValue(double w, double scale) {
        double q = Math.rint(w / scale);
        return (byte) Math.max(-QMAX, Math.min(QMAX, q));
    }

    /** Convenience for arrays: quantizes {@code w} ({@code [rows, cols]} row-major float32). */
    public static Quantized quantize(float[] w, int rows, int cols) {
        ByteBuffer b = ByteBuffer.allocate(w.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(w);
        return quantize(b, DType.FLOAT32, rows, cols, "array");
    }

    /** {@code q · scale} per element, in float32: what a Linear computes its weight from. */
    public static float[] dequantize(Quantized q, int rows, int cols) {
        float[] w = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                w[r * cols + c] = q.values().get(r * cols + c) * q.scales()[r];
            }
        }
        return w;
    }

    private static IntStream rowsOf(int rows, int cols) {
        IntStream s = IntStream.range(0, rows);
        return (long) rows * cols >= PARALLEL_ELEMENTS ? s.parallel() : s;
    }

    private static double absMax(Reader in, int r, int cols, String name) {
        double m = 0;
        int base = r * cols;
        for (int c = 0; c < cols; c++) {
            double v = in.get(base + c);
            if (!Double.isFinite(v)) {
                throw new IllegalArgumentException("tensor '" + name + "' has a non-finite value (" + v + ") in row "
                        + r + " (column " + c + "): int8 scales need finite weights");
            }
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    /** Element {@code i} of a stored tensor as a double, read in place (absolute reads: safe from several threads). */
    private interface Reader {
        double get(int i);
    }

    private static Reader reader(ByteBuffer stored, DType dtype, int rows, int cols, String name) {
        if (rows < 0 || cols < 0) {
            throw new IllegalArgumentException("tensor '" + name + "': negative shape [" + rows + ", " + cols + "]");
        }
        long need = (long) rows * cols * dtype.byteSize();
        ByteBuffer b = stored.slice().order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() != need) {
            throw new IllegalArgumentException("tensor '" + name + "' [" + rows + ", " + cols + "] " + dtype.torchName()
                    + " needs " + need + " bytes, got " + b.remaining());
        }
        return switch (dtype) {
            case FLOAT32 -> i -> b.getFloat(i * 4);
            case FLOAT64 -> i -> b.getDouble(i * 8);
            case FLOAT16 -> i -> DTypeConversion.halfToFloat(b.getShort(i * 2));
            case BFLOAT16 -> i -> DTypeConversion.bf16ToFloat(b.getShort(i * 2));
            default -> throw new IllegalArgumentException("tensor '" + name + "' is " + dtype.torchName()
                    + "; int8 quantization reads float32, float16, bfloat16 or float64 weights");
        };
    }
}
