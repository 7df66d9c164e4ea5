package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.ferry.core.tensor.CopyStream;
import dev.ferry.core.tensor.Device;
import dev.ferry.pytorch.nn.Attention;
import org.junit.jupiter.api.Test;

/** Ferry's native library where it is not built (every CPU machine): Ferry runs as before. */
class TorchNativeTest {

    @Test
    void aLibraryIsUsedOnlyWithTheLibtorchReleaseItWasBuiltAgainst() {
        assertThat(TorchNative.sameRelease("2.11.0", "2.11.0+cu130")).isTrue();
        assertThat(TorchNative.sameRelease("2.11.0", "2.7.1")).isFalse();
        assertThat(TorchNative.sameRelease("2.11.0", null)).isFalse();
    }

    @Test
    void onTheCpuCopiesRunInOrderWithTheCompute() {
        try (DjlBackend backend = new DjlBackend()) {
            assertThat(backend.copyStream(Device.cpu())).isSameAs(CopyStream.NONE);
        }
    }

    @Test
    void attentionOnTheCpuIsTheSeparateOpsOverRepeatedHeads() {
        try (DjlBackend backend = new DjlBackend(); NDManager m = backend.manager(Device.cpu()).newSubManager()) {
            NDArray q = m.randomNormal(new Shape(1, 4, 1, 8));
            NDArray k = m.randomNormal(new Shape(1, 2, 5, 8));
            NDArray v = m.randomNormal(new Shape(1, 2, 5, 8));
            assertThat(TorchNative.fusedAttention(q)).isFalse();
            NDArray attended = Attention.attend(q, k, v, 2, null, 0.3f, 0f);
            NDArray separate = Attention.scaledDotProduct(q, Attention.repeatKv(k, 2), Attention.repeatKv(v, 2), null,
                    0.3f);
            assertThat(attended.toFloatArray()).containsExactly(separate.toFloatArray());
        }
    }
}
