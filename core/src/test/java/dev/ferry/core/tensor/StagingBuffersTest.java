package dev.ferry.core.tensor;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.testing.CountingPageLocking;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class StagingBuffersTest {

    @Test
    void aReleasedBufferServesTheNextRequestOfItsSize() {
        StagingBuffers pool = new StagingBuffers(1 << 20);
        ByteBuffer first = pool.acquire(4096);
        pool.release(first);
        ByteBuffer second = pool.acquire(3000);
        assertThat(second).isSameAs(first);
        assertThat(second.position()).isZero();
        assertThat(second.limit()).isEqualTo(3000);
        assertThat(second.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
        assertThat(pool.allocated()).isEqualTo(1);
        assertThat(pool.reused()).isEqualTo(1);
    }

    @Test
    void aSmallRequestDoesNotPinABigBuffer() {
        StagingBuffers pool = new StagingBuffers(1 << 20);
        ByteBuffer big = pool.acquire(100_000);
        pool.release(big);
        assertThat(pool.acquire(1000)).isNotSameAs(big);
    }

    @Test
    void idleBuffersBeyondTheBoundAreLeftToTheGc() {
        StagingBuffers pool = new StagingBuffers(10_000); // buffers fill whole pages: 8192 bytes each
        ByteBuffer a = pool.acquire(8192);
        ByteBuffer b = pool.acquire(8192);
        pool.release(a);
        pool.release(b);
        assertThat(pool.idleBytes()).isEqualTo(8192);
    }

    @Test
    void conversionIntoAStagingBufferEqualsAFreshConversion() {
        ByteBuffer bf16 = ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN);
        bf16.putShort(DTypeConversion.floatToBf16(1.5f)).putShort(DTypeConversion.floatToBf16(-2f))
                .putShort(DTypeConversion.floatToBf16(0.1f)).flip();
        StagingBuffers pool = new StagingBuffers(1 << 20);
        ByteBuffer staged = DTypeConversion.convertInto(bf16, DType.BFLOAT16, DType.FLOAT32, pool.acquire(12));
        assertThat(staged).isEqualTo(DTypeConversion.convert(bf16, DType.BFLOAT16, DType.FLOAT32));
        assertThat(staged.getFloat(4)).isEqualTo(-2f);
    }

    @Test
    void aLargeTensorConvertedInParallelEqualsTheElementwiseConversion() {
        int n = 3_000_001; // several parallel ranges and a ragged last one
        ByteBuffer bf16 = ByteBuffer.allocateDirect(2 * n).order(ByteOrder.LITTLE_ENDIAN);
        java.util.Random r = new java.util.Random(3);
        for (int i = 0; i < n; i++) {
            bf16.putShort((short) r.nextInt());
        }
        bf16.flip();
        ByteBuffer f32 = DTypeConversion.convert(bf16, DType.BFLOAT16, DType.FLOAT32);
        for (int i = 0; i < n; i += 99_991) {
            assertThat(Float.floatToRawIntBits(f32.getFloat(4 * i)))
                    .isEqualTo(Float.floatToRawIntBits(DTypeConversion.bf16ToFloat(bf16.getShort(2 * i))));
        }
        assertThat(Float.floatToRawIntBits(f32.getFloat(4 * (n - 1))))
                .isEqualTo(Float.floatToRawIntBits(DTypeConversion.bf16ToFloat(bf16.getShort(2 * (n - 1)))));
    }

    @Test
    void buffersStartOnAPageAndFillWholePagesSoLockingOneNeverTouchesAnother() {
        StagingBuffers pool = new StagingBuffers(1 << 20);
        ByteBuffer a = pool.acquire(100);
        assertThat(a.limit()).isEqualTo(100);
        assertThat(a.capacity() % PageLocking.PAGE).isZero();
        assertThat(a.alignmentOffset(0, PageLocking.PAGE)).isZero();
    }

    @Test
    void newBuffersAreLockedOnceAndUnlockedWhenDropped() {
        CountingPageLocking counting = new CountingPageLocking();
        StagingBuffers pool = new StagingBuffers(4096, counting);
        ByteBuffer a = pool.acquire(4096);
        ByteBuffer b = pool.acquire(4096);
        assertThat(counting.buffers()).hasSize(2);
        pool.release(a);
        pool.release(b); // over the idle bound: dropped, so unlocked
        assertThat(counting.buffers()).containsExactly(a);
        assertThat(pool.acquire(4096)).isSameAs(a); // reused: not locked again
        assertThat(counting.buffers()).hasSize(1);
        pool.release(a);
        pool.close();
        assertThat(counting.buffers()).isEmpty();
    }
}
