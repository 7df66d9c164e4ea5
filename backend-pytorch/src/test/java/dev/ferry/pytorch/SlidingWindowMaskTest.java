package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.ferry.pytorch.nn.Attention;
import dev.ferry.pytorch.nn.PaddingMask;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Sliding-window masks as transformers defines them ({@code kv_idx > q_idx - sliding_window}: a query sees itself
 * and the {@code window - 1} keys before it), in prefill, in KV-cache decode and with left padding.
 */
class SlidingWindowMaskTest {

    static NDManager manager;

    @BeforeAll
    static void start() {
        manager = NDManager.newBaseManager("PyTorch");
    }

    @AfterAll
    static void stop() {
        manager.close();
    }

    /** 1 where the mask lets a query see a key, row by row. */
    static int[][] visible(NDArray mask, int rows, int cols) {
        float[] m = mask.toFloatArray();
        int[][] out = new int[rows][cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                out[i][j] = m[m.length - rows * cols + i * cols + j] == 0f ? 1 : 0;
            }
        }
        return out;
    }

    @Test
    void aPrefillQuerySeesItselfAndTheWindowMinusOneKeysBefore() {
        NDArray mask = Attention.causalMask(manager, 0, 5, 3);
        assertThat(visible(mask, 5, 5)).isDeepEqualTo(new int[][] {
                {1, 0, 0, 0, 0},
                {1, 1, 0, 0, 0},
                {1, 1, 1, 0, 0},
                {0, 1, 1, 1, 0},
                {0, 0, 1, 1, 1}});
    }

    @Test
    void aDecodeStepHidesCachedKeysOutsideTheWindowOnceThereAreAny() {
        assertThat(Attention.causalMask(manager, 2, 1, 3)).isNull(); // 3 positions, all inside the window
        assertThat(visible(Attention.causalMask(manager, 4, 1, 3), 1, 5)).isDeepEqualTo(new int[][] {{0, 0, 1, 1, 1}});
        assertThat(Attention.causalMask(manager, 4, 1, 0)).isNull(); // no window: nothing to hide
    }

    @Test
    void withLeftPaddingTheWindowCountsColumnsSoARowSeesWhatItWouldAlone() {
        // row 0: two pads then three tokens; row 1: five tokens; window 2
        NDArray attention = manager.create(new long[] {0, 0, 1, 1, 1, 1, 1, 1, 1, 1}, new ai.djl.ndarray.types.Shape(2, 5));
        NDArray mask = PaddingMask.of(attention, 2, 0, 5).additive(manager, 5, 2);
        float[] m = mask.toFloatArray();
        int[][] row0 = new int[5][5];
        for (int i = 0; i < 5; i++) {
            for (int j = 0; j < 5; j++) {
                row0[i][j] = m[i * 5 + j] == 0f ? 1 : 0;
            }
        }
        assertThat(row0[2]).containsExactly(0, 0, 1, 0, 0);
        assertThat(row0[3]).containsExactly(0, 0, 1, 1, 0);
        assertThat(row0[4]).containsExactly(0, 0, 0, 1, 1);
        assertThat(visible(mask, 5, 5)[4]).containsExactly(0, 0, 0, 1, 1);
    }
}
