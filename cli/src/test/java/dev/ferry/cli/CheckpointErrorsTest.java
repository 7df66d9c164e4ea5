package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The checkpoints people have, on the command line as in the builder: one line, before any weight is read. */
class CheckpointErrorsTest {

    @TempDir
    Path tmp;

    private Path folderWith(String... files) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("model"));
        for (String f : files) {
            if (f.equals("config.json")) {
                Files.copy(Cli.fixtures().resolve("tiny-llama/config.json"), dir.resolve(f));
            } else {
                Files.write(dir.resolve(f), new byte[] {1, 2, 3, 4});
            }
        }
        return dir;
    }

    @Test
    void generateOnAPytorchModelBinFolderSaysHowToConvertAndExitsTwo() throws IOException {
        Path dir = folderWith("config.json", "pytorch_model.bin");
        Cli r = Cli.run("generate", "--model", dir.toString(), "--input-ids", "1,2,3");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).startsWith("ferry generate: --model: " + dir + " holds PyTorch pickle weights")
                .contains("Ferry reads safetensors only", "safe_serialization=True");
    }

    @Test
    void aGgufFileIsNamedAsOne() throws IOException {
        Path file = Files.write(tmp.resolve("llama.Q4_K_M.gguf"), new byte[] {'G', 'G', 'U', 'F', 3, 0, 0, 0});
        Cli r = Cli.run("plan", "--model", file.toString());
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains(file + " is a GGUF file (llama.cpp's format");
    }

    @Test
    void aFolderWithoutConfigJsonIsAnIncompleteOrGatedDownload() throws IOException {
        Path dir = folderWith("model.safetensors");
        Cli r = Cli.run("generate", "--model", dir.toString(), "--input-ids", "1,2,3");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains(dir + " has no config.json (nor model.onnx)", "gated model");
    }

    @Test
    void aCpuBudgetAboveThePhysicalMemoryIsAWarningNamingBoth() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=100000GiB");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.err()).contains("warning: --max-memory: the cpu budget 97.66 TiB is more than this machine's "
                + "physical memory (");
    }

    @Test
    void anInlineJsonDeviceMapIsTakenAsTheBuilderTakesIt() throws IOException {
        String map = "{\"model.embed_tokens\": \"cpu\", \"model.layers\": \"cpu\", \"model.norm\": \"cpu\", "
                + "\"model.rotary_emb\": \"cpu\", \"lm_head\": \"disk\"}";
        Path file = Files.writeString(tmp.resolve("map.json"), map);
        Cli inline = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", map);
        Cli fromFile = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", file.toString());
        assertThat(inline.exitCode()).as(inline.toString()).isZero();
        assertThat(inline.out()).isEqualTo(fromFile.out()).contains("lm_head");
    }

    @Test
    void aBadInlineMapIsAUsageErrorNamingIt() {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", "{\"lm_head\": \"tpu\"}");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("--device-map", "inline JSON map");
    }

    @Test
    void withoutALibTorchJarGenerateNamesTheMavenCoordinatesAndNoGuiceText() throws Exception {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        String classPath = Arrays.stream(cp.split(File.pathSeparator)).filter(e -> !e.contains("pytorch-native"))
                .collect(Collectors.joining(File.pathSeparator));
        ProcessBuilder pb = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-cp", classPath, "-DDJL_CACHE_DIR=" + tmp.resolve("djl"),
                "-DENGINE_CACHE_DIR=" + tmp.resolve("djl"), FerryCli.class.getName(), "generate", "--model",
                Cli.model("tiny-llama"), "--input-ids", "1,2,3")).redirectErrorStream(true);
        pb.environment().remove("PYTORCH_LIBRARY_PATH");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isEqualTo(1);
        assertThat(out).contains("ferry generate: error: the PyTorch backend found no libtorch native library",
                "ai.djl.pytorch:pytorch-native-cpu:2.7.1:").doesNotContain("Guice", "\tat ");
    }
}
