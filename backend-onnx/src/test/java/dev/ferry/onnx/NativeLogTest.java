package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** ONNX Runtime's errors reach the caller as exceptions; its native logger writes nothing on stderr. */
class NativeLogTest {

    @Test
    void aFailingRunRaisesItsCauseAndLogsNoNativeLineOnStderr() throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        // -Xss4m: ONNX Runtime 1.29 on a JVM's main thread can overflow the default 1 MiB stack (SIGSEGV, exit 139)
        Process p = new ProcessBuilder(List.of(java.toString(), "-Xss4m", "-cp", System.getProperty("java.class.path"),
                NativeLogMain.class.getName(), TestModels.fixture("tiny-llama", "model.onnx").toString())).start();
        String out;
        String err;
        try {
            out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        } finally {
            p.destroyForcibly();
        }
        assertThat(out).startsWith("error: ").contains("999");
        assertThat(err).doesNotContain("onnxruntime:").doesNotContain("[E:").doesNotContain("[W:");
    }
}
