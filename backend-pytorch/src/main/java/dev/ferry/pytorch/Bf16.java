package dev.ferry.pytorch;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Widening conversions done in Java before bytes reach DJL. Temporary: replaced by
 * {@code dev.ferry.core.tensor.DTypeConversion} once branch {@code weights} is merged.
 */
final class Bf16 {

    private Bf16() {
    }

    /** bfloat16 (little-endian) to a new direct native-order float32 buffer: the 16 bits shifted left by 16. */
    static ByteBuffer bf16ToF32(ByteBuffer src, long count) {
        ByteBuffer in = src.slice().order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer out = ByteBuffer.allocateDirect(Math.toIntExact(count * 4)).order(ByteOrder.nativeOrder());
        for (int i = 0; i < count; i++) {
            out.putInt(i * 4, (in.getShort(i * 2) & 0xFFFF) << 16);
        }
        return out;
    }

    /** int16 (little-endian) to a new direct native-order int32 buffer, sign-extended. */
    static ByteBuffer i16ToI32(ByteBuffer src, long count) {
        ByteBuffer in = src.slice().order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer out = ByteBuffer.allocateDirect(Math.toIntExact(count * 4)).order(ByteOrder.nativeOrder());
        for (int i = 0; i < count; i++) {
            out.putInt(i * 4, in.getShort(i * 2));
        }
        return out;
    }
}
