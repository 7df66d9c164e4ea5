package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.load.BackendUnavailableException;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.Fixtures;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The library without a libtorch native jar: the builder says which Maven coordinates to add, as a Ferry exception,
 * with no Guice or DJL report around it. Run in a child JVM whose class path lacks pytorch-native-cpu and whose DJL
 * cache is empty (a libtorch DJL extracted earlier would otherwise be found there).
 */
class NoLibTorchTest {

    @TempDir
    Path tmp;

    @Test
    void theBuilderNamesTheNativeJarToAddWithoutGuiceText() throws Exception {
        String classPath = Arrays.stream(testClassPath().split(File.pathSeparator))
                .filter(e -> !e.contains("pytorch-native")).collect(Collectors.joining(File.pathSeparator));
        ProcessBuilder pb = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", classPath, "-DDJL_CACHE_DIR=" + tmp.resolve("djl"), "-DENGINE_CACHE_DIR=" + tmp.resolve("engine"),
                "-Dai.djl.offline=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=off", Main.class.getName(),
                Fixtures.model("tiny-llama").toString())).redirectErrorStream(true);
        pb.environment().remove("PYTORCH_LIBRARY_PATH");
        pb.environment().remove("DJL_CACHE_DIR");
        pb.environment().remove("ENGINE_CACHE_DIR");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(out).as(out).startsWith(BackendUnavailableException.class.getName() + ": the PyTorch backend "
                        + "found no libtorch native library")
                .contains("ai.djl.pytorch:pytorch-native-cpu:2.7.1:" + LibTorch.classifier())
                .doesNotContain("Guice", "ProvisionException");
        assertThat(p.exitValue()).isEqualTo(3);
    }

    /** The test class path: surefire's booter jar hides it behind a manifest, so ask surefire's property first. */
    private static String testClassPath() {
        String cp = System.getProperty("surefire.test.class.path");
        return cp != null && !cp.isBlank() ? cp : System.getProperty("java.class.path");
    }

    /** The child: one load through the builder, the exception's type and message on stdout. */
    public static final class Main {
        public static void main(String[] args) {
            try (var model = Ferry.model(Path.of(args[0])).backend("pytorch").load()) {
                System.out.println("loaded");
            } catch (RuntimeException e) {
                System.out.println(e.getClass().getName() + ": " + e.getMessage());
                System.exit(3);
            }
        }
    }
}
