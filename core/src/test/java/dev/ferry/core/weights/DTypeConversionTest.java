package dev.ferry.core.weights;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class DTypeConversionTest {

    private static short s(int bits) {
        return (short) bits;
    }

    @Test
    void bf16WidensByShiftingIntoTheHighHalf() {
        assertThat(DTypeConversion.bf16ToFloat(s(0x3F80))).isEqualTo(1.0f);
        assertThat(DTypeConversion.bf16ToFloat(s(0xC040))).isEqualTo(-3.0f);
        assertThat(DTypeConversion.bf16ToFloat(s(0x7F80))).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(DTypeConversion.bf16ToFloat(s(0x0001))).isEqualTo(Float.intBitsToFloat(0x00010000));
        assertThat(Float.isNaN(DTypeConversion.bf16ToFloat(s(0x7FC0)))).isTrue();
    }

    @Test
    void floatToBf16RoundsToNearestEven() {
        // 1 + 2^-8 is halfway between bf16 1.0 (even) and 1 + 2^-7: goes to the even one
        assertThat(DTypeConversion.floatToBf16(Float.intBitsToFloat(0x3F808000))).isEqualTo(s(0x3F80));
        // 1 + 3*2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): goes up
        assertThat(DTypeConversion.floatToBf16(Float.intBitsToFloat(0x3F818000))).isEqualTo(s(0x3F82));
        // just above halfway rounds up, just below rounds down
        assertThat(DTypeConversion.floatToBf16(Float.intBitsToFloat(0x3F808001))).isEqualTo(s(0x3F81));
        assertThat(DTypeConversion.floatToBf16(Float.intBitsToFloat(0x3F807FFF))).isEqualTo(s(0x3F80));
    }

    @Test
    void floatToBf16KeepsSpecialValues() {
        assertThat(DTypeConversion.floatToBf16(Float.POSITIVE_INFINITY)).isEqualTo(s(0x7F80));
        assertThat(DTypeConversion.floatToBf16(Float.NEGATIVE_INFINITY)).isEqualTo(s(0xFF80));
        assertThat(DTypeConversion.floatToBf16(-0.0f)).isEqualTo(s(0x8000));
        // the largest float is past halfway to bf16's largest, so it overflows to infinity
        assertThat(DTypeConversion.floatToBf16(Float.MAX_VALUE)).isEqualTo(s(0x7F80));
        // a NaN whose payload lies only in the low 16 bits must not truncate to infinity
        short nan = DTypeConversion.floatToBf16(Float.intBitsToFloat(0x7F800001));
        assertThat(nan & 0x7F80).isEqualTo(0x7F80);
        assertThat(nan & 0x007F).isNotZero();
        assertThat(DTypeConversion.floatToBf16(Float.intBitsToFloat(0xFFC00000))).isEqualTo(s(0xFFC0));
    }

    @Test
    void halfWidensNormalsSubnormalsAndSpecials() {
        assertThat(DTypeConversion.halfToFloat(s(0x3C00))).isEqualTo(1.0f);
        assertThat(DTypeConversion.halfToFloat(s(0xC000))).isEqualTo(-2.0f);
        assertThat(DTypeConversion.halfToFloat(s(0x7BFF))).isEqualTo(65504.0f);
        assertThat(DTypeConversion.halfToFloat(s(0x0001))).isEqualTo(0x1p-24f);
        assertThat(DTypeConversion.halfToFloat(s(0x03FF))).isEqualTo(1023 * 0x1p-24f);
        assertThat(DTypeConversion.halfToFloat(s(0x0400))).isEqualTo(0x1p-14f);
        assertThat(Float.floatToRawIntBits(DTypeConversion.halfToFloat(s(0x8000)))).isEqualTo(0x80000000);
        assertThat(DTypeConversion.halfToFloat(s(0xFC00))).isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(Float.isNaN(DTypeConversion.halfToFloat(s(0x7E00)))).isTrue();
    }

    @Test
    void floatToHalfRoundsToNearestEvenIncludingSubnormals() {
        assertThat(DTypeConversion.floatToHalf(1.0f)).isEqualTo(s(0x3C00));
        // 1 + 2^-11 is halfway between 1.0 (even) and 1 + 2^-10: goes to 1.0
        assertThat(DTypeConversion.floatToHalf(1.0f + 0x1p-11f)).isEqualTo(s(0x3C00));
        // 1 + 3*2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9: goes up
        assertThat(DTypeConversion.floatToHalf(1.0f + 3 * 0x1p-11f)).isEqualTo(s(0x3C02));
        // 2^-25 is halfway between 0 and the smallest subnormal: goes to 0; a bit more goes to 1 ulp
        assertThat(DTypeConversion.floatToHalf(0x1p-25f)).isEqualTo(s(0x0000));
        assertThat(DTypeConversion.floatToHalf(Math.nextUp(0x1p-25f))).isEqualTo(s(0x0001));
        // 1.5 * 2^-24 is halfway between subnormals 1 (odd) and 2: goes to 2
        assertThat(DTypeConversion.floatToHalf(1.5f * 0x1p-24f)).isEqualTo(s(0x0002));
        // the largest subnormal plus half an ulp rounds up into the smallest normal
        assertThat(DTypeConversion.floatToHalf(1023.5f * 0x1p-24f)).isEqualTo(s(0x0400));
        assertThat(DTypeConversion.floatToHalf(-0x1p-14f)).isEqualTo(s(0x8400));
    }

    @Test
    void floatToHalfOverflowsAtHalfwayPastTheLargest() {
        assertThat(DTypeConversion.floatToHalf(65504f)).isEqualTo(s(0x7BFF));
        assertThat(DTypeConversion.floatToHalf(Math.nextDown(65520f))).isEqualTo(s(0x7BFF));
        assertThat(DTypeConversion.floatToHalf(65520f)).isEqualTo(s(0x7C00));
        assertThat(DTypeConversion.floatToHalf(-1e10f)).isEqualTo(s(0xFC00));
        assertThat(DTypeConversion.floatToHalf(Float.POSITIVE_INFINITY)).isEqualTo(s(0x7C00));
        short nan = DTypeConversion.floatToHalf(Float.intBitsToFloat(0x7F800001));
        assertThat(nan & 0x7C00).isEqualTo(0x7C00);
        assertThat(nan & 0x03FF).isNotZero();
    }

    @Test
    void everyHalfBitPatternSurvivesARoundTripThroughFloat() {
        for (int h = 0; h < 0x10000; h++) {
            boolean nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
            short back = DTypeConversion.floatToHalf(DTypeConversion.halfToFloat(s(h)));
            if (nan) {
                assertThat(back & 0x7E00).as("NaN %04x stays a quiet NaN", h).isEqualTo(0x7E00);
            } else {
                assertThat(back & 0xFFFF).as("half %04x", h).isEqualTo(h);
            }
        }
    }

    @Test
    void everyBf16BitPatternSurvivesARoundTripThroughFloat() {
        for (int b = 0; b < 0x10000; b++) {
            boolean nan = (b & 0x7F80) == 0x7F80 && (b & 0x7F) != 0;
            short back = DTypeConversion.floatToBf16(DTypeConversion.bf16ToFloat(s(b)));
            if (nan) {
                assertThat(back & 0x7FC0).isEqualTo(0x7FC0);
            } else {
                assertThat(back & 0xFFFF).as("bf16 %04x", b).isEqualTo(b);
            }
        }
    }

    @Test
    void convertsWholeBuffersIntoNewDirectLittleEndianBuffers() {
        ByteBuffer f32 = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putFloat(1f).putFloat(-2f)
                .putFloat(0.5f).flip();
        ByteBuffer bf16 = DTypeConversion.convert(f32, DType.FLOAT32, DType.BFLOAT16);
        assertThat(bf16.isDirect()).isTrue();
        assertThat(bf16.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
        assertThat(bf16.remaining()).isEqualTo(6);
        assertThat(bf16.getShort(0)).isEqualTo(s(0x3F80));
        assertThat(bf16.getShort(2)).isEqualTo(s(0xC000));
        assertThat(bf16.getShort(4)).isEqualTo(s(0x3F00));
        assertThat(f32.position()).isZero();

        ByteBuffer back = DTypeConversion.convert(bf16, DType.BFLOAT16, DType.FLOAT32);
        assertThat(back.getFloat(0)).isEqualTo(1f);
        assertThat(back.getFloat(4)).isEqualTo(-2f);
        assertThat(back.getFloat(8)).isEqualTo(0.5f);

        ByteBuffer f16 = DTypeConversion.convert(bf16, DType.BFLOAT16, DType.FLOAT16);
        assertThat(f16.getShort(0)).isEqualTo(s(0x3C00));
        assertThat(f16.getShort(2)).isEqualTo(s(0xC000));
        assertThat(f16.getShort(4)).isEqualTo(s(0x3800));
    }

    @Test
    void refusesIntegerConversions() {
        assertThatThrownBy(() -> DTypeConversion.convert(ByteBuffer.allocate(8), DType.INT64, DType.FLOAT32))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("int64");
    }
}
