package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry quantize} and {@code --quantize int8} on plan and generate. */
class QuantizeCommandTest {

    @TempDir
    Path tmp;

    private static long[] generate(String model, String... more) {
        List<String> args = new java.util.ArrayList<>(List.of("generate", "--model", model, "--input-ids",
                Cli.goldenPrompt("tiny-llama"), "--max-new-tokens", "8", "--format", "json"));
        args.addAll(List.of(more));
        Cli r = Cli.run(args.toArray(String[]::new));
        assertThat(r.exitCode()).as(r.toString()).isZero();
        return Cli.longs(r.json().get("new_tokens"));
    }

    @Test
    void aQuantizedFolderGeneratesWhatQuantizingAtLoadGenerates() {
        Path out = tmp.resolve("tiny-llama-int8");
        Cli q = Cli.run("quantize", "--model", Cli.model("tiny-llama"), "--out", out.toString());
        assertThat(q.exitCode()).as(q.toString()).isZero();
        assertThat(q.out()).contains("28 weights quantized to int8");
        long[] atLoad = generate(Cli.model("tiny-llama"), "--quantize", "int8");
        assertThat(generate(out.toString())).containsExactly(atLoad);
        assertThat(generate(out.toString(), "--max-memory", "cpu=200KiB")).containsExactly(atLoad);
    }

    @Test
    void aNonEmptyOutFolderIsRefusedWithExitCode2AndLeftAsItWas() throws Exception {
        Path out = Files.createDirectories(tmp.resolve("out"));
        Files.writeString(out.resolve("config.json"), "{}");
        Cli r = Cli.run("quantize", "--model", Cli.model("tiny-llama"), "--out", out.toString());
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("--out").contains("not empty").contains("config.json");
        assertThat(Files.readString(out.resolve("config.json"))).isEqualTo("{}");
        try (var files = Files.list(out)) {
            assertThat(files.count()).isEqualTo(1);
        }
    }

    @Test
    void anUnknownSchemeIsAUsageErrorNamingTheKnownOnes() {
        Cli r = Cli.run("quantize", "--model", Cli.model("tiny-llama"), "--out", tmp.resolve("o").toString(),
                "--scheme", "int4");
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("int4").contains("int8");
        assertThat(tmp.resolve("o")).doesNotExist();
    }

    @Test
    void quantizeWithTheOnnxBackendIsRefusedByName() {
        Cli r = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--backend", "onnx", "--quantize", "int8",
                "--input-ids", Cli.goldenPrompt("tiny-llama"));
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("--quantize").contains("onnx");
        assertThatThrownBy(() -> dev.ferry.core.load.Ferry.model(Path.of(Cli.model("tiny-llama"))).backend("onnx")
                .quantize("int8").load()).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("quantize int8").hasMessageContaining("ONNX");
    }

    @Test
    void planWithQuantizeCountsInt8SizesAndKeepsMoreResident() {
        Cli fp = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=400KiB", "--format", "json");
        Cli q = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=400KiB", "--format", "json",
                "--quantize", "int8");
        assertThat(fp.exitCode()).as(fp.toString()).isZero();
        assertThat(q.exitCode()).as(q.toString()).isZero();
        assertThat(fp.out()).contains("\"disk\"");
        assertThat(q.out()).doesNotContain("\"disk\"");
    }
}
