package dev.ferry.core.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class ParallelCopyTest {

    private static ByteBuffer pattern(int n) {
        ByteBuffer b = ByteBuffer.allocateDirect(n);
        for (int i = 0; i < n; i++) {
            b.put(i, (byte) (i * 31 + 7));
        }
        return b;
    }

    @Test
    void aLargeCopySplitOverThreadsEqualsTheSourceByteForByte() {
        int n = ParallelCopy.MIN_PARALLEL_BYTES * 3 + 12345; // parts of unequal size, a ragged last one
        ByteBuffer src = pattern(n + 100).position(100);
        ByteBuffer dst = ByteBuffer.allocateDirect(n + 50).position(50);
        ParallelCopy.copy(src, dst);
        assertThat(src.position()).isEqualTo(100);
        assertThat(dst.position()).isEqualTo(50);
        assertThat(dst.slice(50, n)).isEqualTo(src.slice(100, n));
    }

    @Test
    void aSmallCopyStaysOnTheCallingThreadAndIsExact() {
        ByteBuffer src = pattern(1000);
        ByteBuffer dst = ByteBuffer.allocate(1000);
        ParallelCopy.copy(src, dst);
        assertThat(dst).isEqualTo(src);
    }

    @Test
    void aDestinationWithTooLittleRoomIsRefused() {
        assertThatThrownBy(() -> ParallelCopy.copy(pattern(10), ByteBuffer.allocate(9)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("10 bytes");
    }
}
