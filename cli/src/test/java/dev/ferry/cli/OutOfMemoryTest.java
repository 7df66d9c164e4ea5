package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Running out of memory prints one line with what to change, not a raw trace. */
class OutOfMemoryTest {

    @Test
    void aJavaOutOfMemoryErrorIsOneLineWithWhatToChange() {
        String line = FerryCli.failure(new IllegalStateException("prefetching block 3 failed",
                new OutOfMemoryError("Direct buffer memory")));
        assertThat(line).doesNotContain("\n").startsWith("out of memory (Direct buffer memory)")
                .contains("--max-memory").contains("--offload-dir").contains("-Xmx");
    }

    @Test
    void libtorchsOutOfMemoryMessageGetsTheSameAdvice() {
        assertThat(FerryCli.failure(new RuntimeException("DefaultCPUAllocator: not enough memory: you tried to "
                + "allocate 4294967296 bytes.\nException raised from ..."))).doesNotContain("\n")
                .startsWith("out of memory (DefaultCPUAllocator: not enough memory").contains("--max-memory");
    }

    @Test
    void otherFailuresAreDescribedAsBefore() {
        assertThat(FerryCli.failure(new IllegalStateException("boom", new java.io.IOException("disk full"))))
                .isEqualTo("boom: caused by disk full");
    }
}
