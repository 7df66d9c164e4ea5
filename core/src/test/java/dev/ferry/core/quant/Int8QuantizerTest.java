package dev.ferry.core.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class Int8QuantizerTest {

    private static float[] gaussian(int n, long seed, double std) {
        Random r = new Random(seed);
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            w[i] = (float) (r.nextGaussian() * std);
        }
        return w;
    }

    /** |w − q·s| ≤ s/2 for every element, s the element's row scale (plus float32 rounding of the product). */
    private static void assertWithinHalfAScale(float[] w, Int8Quantizer.Quantized q, int rows, int cols) {
        float[] back = Int8Quantizer.dequantize(q, rows, cols);
        for (int r = 0; r < rows; r++) {
            double s = q.scales()[r];
            for (int c = 0; c < cols; c++) {
                int i = r * cols + c;
                double err = Math.abs((double) w[i] - back[i]);
                assertThat(err).as("row %d col %d: w %s, q %d, scale %s", r, c, w[i], q.values().get(i), s)
                        .isLessThanOrEqualTo(s / 2 + Math.ulp(Math.abs(back[i])) + Math.ulp((float) s) * 127);
            }
        }
    }

    @ParameterizedTest(name = "[{0}, {1}]")
    @CsvSource({"1, 1", "1, 7", "5, 1", "3, 1000", "64, 64", "200, 33"})
    void roundTripErrorIsAtMostHalfAScalePerElement(int rows, int cols) {
        float[] w = gaussian(rows * cols, rows * 31L + cols, 0.2);
        Int8Quantizer.Quantized q = Int8Quantizer.quantize(w, rows, cols);
        assertThat(q.values().remaining()).isEqualTo(rows * cols);
        assertThat(q.scales()).hasSize(rows);
        assertWithinHalfAScale(w, q, rows, cols);
    }

    @Test
    void eachRowsLargestMagnitudeMapsTo127AndTheScaleIsItOver127() {
        float[] w = {0.5f, -2f, 1f, /* row 1 */ 3f, 0.25f, -0.125f};
        Int8Quantizer.Quantized q = Int8Quantizer.quantize(w, 2, 3);
        assertThat(q.scales()[0]).isEqualTo(2f / 127);
        assertThat(q.scales()[1]).isEqualTo(3f / 127);
        assertThat(q.values().get(1)).isEqualTo((byte) -127);
        assertThat(q.values().get(3)).isEqualTo((byte) 127);
        assertThat(q.values().get(0)).isEqualTo((byte) Math.rint(0.5 / (2f / 127))); // 31.75 -> 32
    }

    @Test
    void valuesAreSymmetricAndNeverMinus128() {
        float[] w = gaussian(50 * 50, 7, 1);
        w[0] = -1000f; // an outlier: its row's other values collapse towards 0, but stay in range
        Int8Quantizer.Quantized q = Int8Quantizer.quantize(w, 50, 50);
        for (int i = 0; i < w.length; i++) {
            assertThat(q.values().get(i)).isBetween((byte) -127, (byte) 127);
        }
        assertThat(q.values().get(0)).isEqualTo((byte) -127);
    }

    @Test
    void aZeroRowHasScaleZeroAndZerosAndOtherRowsAreUnaffected() {
        float[] w = {0f, 0f, -0f, 1f, -1f, 0.5f};
        Int8Quantizer.Quantized q = Int8Quantizer.quantize(w, 2, 3);
        assertThat(q.scales()[0]).isZero();
        assertThat(new byte[] {q.values().get(0), q.values().get(1), q.values().get(2)}).containsOnly(0);
        assertThat(Int8Quantizer.dequantize(q, 2, 3)).containsExactly(0f, 0f, 0f, 1f, -1f, 64f / 127);
    }

    @Test
    void extremeMagnitudesKeepTheBound() {
        float[] w = {Float.MAX_VALUE, -Float.MAX_VALUE / 3, 1f, /* row 1: subnormals */ Float.MIN_VALUE * 1000,
                -Float.MIN_VALUE * 200, Float.MIN_VALUE, /* row 2: tiny normal */ 1e-30f, -3e-31f, 0f};
        Int8Quantizer.Quantized q = Int8Quantizer.quantize(w, 3, 3);
        assertThat(q.scales()[0]).isFinite().isEqualTo(Float.MAX_VALUE / 127);
        assertThat(q.values().get(0)).isEqualTo((byte) 127);
        assertThat(q.values().get(2)).isZero(); // 1 next to 3.4e38 is below half a scale
        assertWithinHalfAScale(w, q, 3, 3);
    }

    @Test
    void float16AndBfloat16WeightsQuantizeAsTheirFloatValues() {
        float[] w = gaussian(4 * 16, 3, 0.5);
        ByteBuffer f32 = ByteBuffer.allocate(w.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        f32.asFloatBuffer().put(w);
        for (DType t : new DType[] {DType.FLOAT16, DType.BFLOAT16}) {
            ByteBuffer stored = DTypeConversion.convert(f32, DType.FLOAT32, t);
            ByteBuffer back = DTypeConversion.convert(stored, t, DType.FLOAT32);
            float[] asFloats = new float[w.length];
            back.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(asFloats);
            Int8Quantizer.Quantized fromStored = Int8Quantizer.quantize(stored, t, 4, 16, "w");
            Int8Quantizer.Quantized fromFloats = Int8Quantizer.quantize(asFloats, 4, 16);
            assertThat(fromStored.scales()).containsExactly(fromFloats.scales());
            assertThat(fromStored.values()).isEqualTo(fromFloats.values());
        }
    }

    @Test
    void givenScalesGiveTheSameValuesAsComputedOnes() {
        float[] w = gaussian(30 * 40, 11, 0.3);
        ByteBuffer b = ByteBuffer.allocate(w.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(w);
        float[] scales = Int8Quantizer.scales(b, DType.FLOAT32, 30, 40, "w");
        Int8Quantizer.Quantized q = Int8Quantizer.quantize(b, DType.FLOAT32, 30, 40, scales, "w");
        assertThat(q.values()).isEqualTo(Int8Quantizer.quantize(w, 30, 40).values());
    }

    @Test
    void aNonFiniteWeightIsRefusedNamingTheTensorAndRow() {
        float[] w = {1f, 2f, 3f, Float.NaN};
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(w);
        assertThatThrownBy(() -> Int8Quantizer.quantize(b, DType.FLOAT32, 2, 2, "model.layers.0.mlp.up_proj.weight"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("model.layers.0.mlp.up_proj.weight").hasMessageContaining("row 1");
    }

    @Test
    void aByteCountThatIsNotTheShapeIsRefusedNamingTheTensor() {
        ByteBuffer b = ByteBuffer.allocate(12);
        assertThatThrownBy(() -> Int8Quantizer.quantize(b, DType.FLOAT32, 2, 2, "x.weight"))
                .hasMessageContaining("x.weight").hasMessageContaining("16 bytes, got 12");
        assertThatThrownBy(() -> Int8Quantizer.quantize(ByteBuffer.allocate(4), DType.INT32, 1, 1, "y.weight"))
                .hasMessageContaining("y.weight").hasMessageContaining("int32");
    }
}
