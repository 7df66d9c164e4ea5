package dev.ferry.core.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
import java.util.stream.IntStream;

/**
 * Conversions between float32 and the 16-bit float formats (bfloat16, float16), element by element and
 * over whole little-endian buffers. Narrowing rounds to nearest, ties to even; overflow gives infinity;
 * float16 subnormals are produced and read exactly; NaN stays NaN (quiet, sign and the top payload bits
 * kept); infinities and signed zeros are kept. Widening is exact.
 */
public final class DTypeConversion {

    private DTypeConversion() {
    }

    /** The float32 value of a bfloat16 bit pattern (exact). */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** The nearest bfloat16 (ties to even) as a bit pattern. */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            // NaN: keep sign and top payload bits, set the quiet bit so truncation cannot make it infinity
            return (short) ((bits >>> 16) | 0x0040);
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    /** The float32 value of an IEEE float16 bit pattern (exact). */
    public static float halfToFloat(short bits) {
        int h = bits & 0xFFFF;
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1F;
        int mant = h & 0x3FF;
        if (exp == 0) {
            // zero or subnormal: mant * 2^-24, exact in float32
            float magnitude = mant * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        if (exp == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    /** The nearest IEEE float16 (ties to even) as a bit pattern. */
    public static short floatToHalf(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int abs = bits & 0x7FFFFFFF;
        if (abs >= 0x7F800000) {
            if (abs == 0x7F800000) {
                return (short) (sign | 0x7C00);
            }
            return (short) (sign | 0x7C00 | 0x0200 | ((abs >>> 13) & 0x3FF));
        }
        if (abs >= 0x477FF000) {
            // 65520 and above: halfway past the largest float16 (65504) or more, rounds to infinity
            return (short) (sign | 0x7C00);
        }
        if (abs >= 0x38800000) {
            // normal float16 (2^-14 and above)
            int exp = (abs >>> 23) - 127 + 15;
            int mant = abs & 0x7FFFFF;
            int h = (exp << 10) | (mant >>> 13);
            int rest = mant & 0x1FFF;
            if (rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1)) {
                h++;
            }
            return (short) (sign | h);
        }
        if (abs <= 0x33000000) {
            // at most 2^-25, half the smallest subnormal: rounds (ties to even) to zero
            return (short) sign;
        }
        // subnormal float16: value / 2^-24, rounded
        int exp = abs >>> 23;
        int mant = (abs & 0x7FFFFF) | 0x800000;
        int shift = 126 - exp;
        int h = mant >>> shift;
        int rest = mant & ((1 << shift) - 1);
        int halfway = 1 << (shift - 1);
        if (rest > halfway || (rest == halfway && (h & 1) == 1)) {
            h++;
        }
        return (short) (sign | h);
    }

    /** Whether {@link #convert} handles {@code from} to {@code to}. */
    public static boolean supports(DType from, DType to) {
        return from == to || (isConvertibleFloat(from) && isConvertibleFloat(to));
    }

    private static boolean isConvertibleFloat(DType t) {
        return t == DType.FLOAT32 || t == DType.FLOAT16 || t == DType.BFLOAT16;
    }

    /**
     * Converts the remaining bytes of {@code src} (little-endian elements of {@code from}) into a new
     * direct little-endian buffer of {@code to}, position 0. {@code src}'s position is not changed. The same
     * dtype gives a copy. Supported: any pair among float32, float16 and bfloat16 (16-bit to 16-bit goes
     * through float32, which is exact, so it rounds once).
     */
    public static ByteBuffer convert(ByteBuffer src, DType from, DType to) {
        return convertInto(src, from, to, ByteBuffer.allocateDirect(convertedSize(src, from, to)));
    }

    /** Bytes that converting {@code src}'s remaining bytes from {@code from} to {@code to} takes. */
    public static int convertedSize(ByteBuffer src, DType from, DType to) {
        if (!supports(from, to)) {
            throw new IllegalArgumentException("cannot convert " + from.torchName() + " to " + to.torchName()
                    + "; supported: float32, float16 and bfloat16 to each other");
        }
        if (src.remaining() % from.byteSize() != 0) {
            throw new IllegalArgumentException(src.remaining() + " bytes is not a whole number of "
                    + from.torchName() + " elements (" + from.byteSize() + " bytes each)");
        }
        return Math.multiplyExact(src.remaining() / from.byteSize(), to.byteSize());
    }

    /**
     * Like {@link #convert} but into {@code dst} (a reused staging buffer, at least
     * {@link #convertedSize} bytes of capacity), which is returned little-endian with position 0 and limit
     * the converted size.
     */
    public static ByteBuffer convertInto(ByteBuffer src, DType from, DType to, ByteBuffer dst) {
        int size = convertedSize(src, from, to);
        if (dst.capacity() < size) {
            throw new IllegalArgumentException("staging buffer of " + dst.capacity() + " bytes cannot hold " + size);
        }
        ByteBuffer in = src.slice().order(ByteOrder.LITTLE_ENDIAN);
        int count = in.remaining() / from.byteSize();
        ByteBuffer out = dst.clear().limit(size);
        out.order(ByteOrder.LITTLE_ENDIAN);
        if (from == to) {
            out.put(in).flip();
            return out;
        }
        int parts = (int) Math.min(PARALLELISM, Math.max(1, count / PARALLEL_CHUNK_ELEMENTS));
        if (parts == 1) {
            convertRange(in, out, from, to, 0, count);
        } else {
            // a streamed block is converted on every forward: spread big tensors over the cores
            int per = (count + parts - 1) / parts;
            IntStream.range(0, parts).parallel().forEach(p ->
                    convertRange(in, out, from, to, p * per, Math.min(count, (p + 1) * per)));
        }
        return out;
    }

    /** Tensors under this many elements per core are converted on the caller's thread alone. */
    private static final int PARALLEL_CHUNK_ELEMENTS = 1 << 18;
    private static final int PARALLELISM = Runtime.getRuntime().availableProcessors();

    /** Converts elements {@code [start, end)}; absolute reads and writes only, so ranges can run in parallel. */
    private static void convertRange(ByteBuffer in, ByteBuffer out, DType from, DType to, int start, int end) {
        if (from == DType.FLOAT32) {
            FloatBuffer f = in.asFloatBuffer();
            ShortBuffer o = out.asShortBuffer();
            boolean bf16 = to == DType.BFLOAT16;
            for (int i = start; i < end; i++) {
                float v = f.get(i);
                o.put(i, bf16 ? floatToBf16(v) : floatToHalf(v));
            }
            return;
        }
        ShortBuffer s = in.asShortBuffer();
        boolean fromBf16 = from == DType.BFLOAT16;
        if (to == DType.FLOAT32 && fromBf16) {
            // bf16 is the top half of a float32: a shift, no float arithmetic (the hot path of streaming bf16
            // checkpoints into float32 models)
            IntBuffer o = out.asIntBuffer();
            for (int i = start; i < end; i++) {
                o.put(i, (s.get(i) & 0xFFFF) << 16);
            }
        } else if (to == DType.FLOAT32) {
            FloatBuffer o = out.asFloatBuffer();
            for (int i = start; i < end; i++) {
                short v = s.get(i);
                o.put(i, fromBf16 ? bf16ToFloat(v) : halfToFloat(v));
            }
        } else {
            ShortBuffer o = out.asShortBuffer();
            for (int i = start; i < end; i++) {
                short v = s.get(i);
                o.put(i, fromBf16 ? floatToHalf(bf16ToFloat(v)) : floatToBf16(halfToFloat(v)));
            }
        }
    }
}
