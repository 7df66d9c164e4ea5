package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code --backend onnx}: the exported model partitioned by the same device map gives the same tokens. */
class OnnxBackendTest {

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"tiny-llama", "tiny-gpt2"})
    void diskOffloadedOnnxModelGeneratesTheGoldenTokens(String fixture) {
        Cli r = Cli.run("generate", "--backend", "onnx", "--model", Cli.model(fixture), "--input-ids",
                Cli.goldenPrompt(fixture), "--max-memory", "cpu=300KiB", "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(Cli.longs(r.json().get("new_tokens"))).containsExactly(Cli.goldenTokens(fixture));
        assertThat(r.json().get("device_map").toString()).contains("\"disk\"");
    }

    @Test
    void explainBuildsTheTreeFromAnOnnxOnlyFolder() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("exported"));
        Files.copy(Path.of(Cli.model("tiny-llama"), "model.onnx"), dir.resolve("model.onnx"));
        Cli r = Cli.run("explain", "--model", dir.toString(), "--device-map", "auto", "--max-memory", "cpu=400KiB",
                "--preload", "LlamaDecoderLayer");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).contains("(root)", "LlamaForCausalLM",
                "      1                           LlamaDecoderLayer     cpu     disk     yes     in device map");
    }

    @Test
    void offloadDirWorksWithOnnxAndGivesTheGoldenTokens() {
        Path dir = tmp.resolve("offload");
        Cli r = Cli.run("generate", "--backend", "onnx", "--model", Cli.model("tiny-llama"), "--input-ids",
                Cli.goldenPrompt("tiny-llama"), "--max-memory", "cpu=300KiB", "--offload-dir", dir.toString(),
                "--format", "json");

        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(Cli.longs(r.json().get("new_tokens"))).containsExactly(Cli.goldenTokens("tiny-llama"));
        assertThat(r.err()).contains("offload: wrote " + dir);
        assertThat(dir.resolve("index.json")).isRegularFile();
    }

    @Test
    void anOffloadDirFerryMayNotWriteIsUsageWithOnnx() throws IOException {
        Path foreign = Files.createDirectory(tmp.resolve("foreign"));
        Files.writeString(foreign.resolve("notes.txt"), "mine");
        Cli r = Cli.run("generate", "--backend", "onnx", "--model", Cli.model("tiny-llama"), "--input-ids", "1,2",
                "--max-memory", "cpu=300KiB", "--offload-dir", foreign.toString());

        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("--offload-dir");
        assertThat(foreign.resolve("notes.txt")).hasContent("mine");
    }
}
