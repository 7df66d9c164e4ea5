package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry generate}: loads dispatched and generates the golden tokens. */
class GenerateCommandTest {

    /** Embeddings and layers 0-1 resident on the CPU (the main device here), the rest offloaded to disk. */
    private static final String CPU_DISK_MAP = """
            {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "cpu",
             "model.layers.2": "disk", "model.layers.3": "disk", "model.norm": "disk",
             "model.rotary_emb": "cpu", "lm_head": "disk"}""";

    @TempDir
    Path tmp;

    private Cli generate(String fixture, String... more) {
        String[] base = {"generate", "--model", Cli.model(fixture), "--input-ids", Cli.goldenPrompt(fixture),
                "--max-new-tokens", "8", "--format", "json"};
        String[] args = new String[base.length + more.length];
        System.arraycopy(base, 0, args, 0, base.length);
        System.arraycopy(more, 0, args, base.length, more.length);
        return Cli.run(args);
    }

    private static long[] newTokens(Cli r) {
        assertThat(r.exitCode()).as(r.toString()).isZero();
        return Cli.longs(r.json().get("new_tokens"));
    }

    @Test
    void diskOffloadedLlamaGeneratesTheGoldenTokens() throws IOException {
        Path map = Files.writeString(tmp.resolve("map.json"), CPU_DISK_MAP);
        Cli r = generate("tiny-llama", "--device-map", map.toString(), "--preload", "LlamaDecoderLayer");
        assertThat(newTokens(r)).containsExactly(Cli.goldenTokens("tiny-llama"));
    }

    @Test
    void autoMapUnderABudgetGeneratesTheGoldenTokens() {
        Cli r = generate("tiny-llama", "--max-memory", "cpu=400KiB");
        assertThat(newTokens(r)).containsExactly(Cli.goldenTokens("tiny-llama"));
        assertThat(r.json().get("device_map").get("model.layers.3").asText()).isEqualTo("disk");
    }

    @Test
    void gpt2WithTiedHeadOnDiskGeneratesTheGoldenTokens() {
        Cli r = generate("tiny-gpt2", "--max-memory", "cpu=300KiB");
        assertThat(newTokens(r)).containsExactly(Cli.goldenTokens("tiny-gpt2"));
    }

    @Test
    void jsonReportsPromptMapAndTimings() {
        Cli r = generate("tiny-llama", "--max-memory", "cpu=1GiB");
        JsonNode j = r.json();
        assertThat(j.get("backend").asText()).isEqualTo("pytorch");
        assertThat(j.get("main_device").asText()).isEqualTo("cpu");
        assertThat(j.get("device_map").toString()).isEqualTo("{\"\":\"cpu\"}");
        assertThat(Cli.longs(j.get("prompt_ids"))).containsExactly(Cli.longs(Cli.golden("tiny-llama").get("input_ids")));
        assertThat(j.get("load_seconds").asDouble()).isPositive();
        assertThat(j.get("time_to_first_token_seconds").asDouble()).isPositive();
        assertThat(j.get("tokens_per_second").asDouble()).isPositive();
    }

    @Test
    void offloadDirIsWrittenInAccelerateLayoutAndUsed() throws IOException {
        Path map = Files.writeString(tmp.resolve("map.json"), CPU_DISK_MAP);
        Path offload = tmp.resolve("offload");
        Cli r = generate("tiny-llama", "--device-map", map.toString(), "--offload-dir", offload.toString());
        assertThat(newTokens(r)).containsExactly(Cli.goldenTokens("tiny-llama"));
        assertThat(r.err()).contains("offload: wrote " + offload);
        JsonNode index = new com.fasterxml.jackson.databind.ObjectMapper().readTree(offload.resolve("index.json").toFile());
        // the checkpoint is float32 already: Accelerate's index points into its safetensors file, no second copy
        JsonNode up = index.get("model.layers.3.mlp.up_proj.weight");
        assertThat(up.get("safetensors_file").asText()).endsWith(".safetensors");
        assertThat(up.get("weight_name").asText()).isEqualTo("model.layers.3.mlp.up_proj.weight");
        assertThat(up.get("dtype").asText()).isEqualTo("float32");
        assertThat(index.has("lm_head.weight")).isTrue();
        assertThat(index.has("model.layers.1.mlp.up_proj.weight")).isFalse();
        assertThat(offload.resolve("model.layers.3.mlp.up_proj.weight.dat")).doesNotExist();
    }

    @Test
    void prefetchOffAndTwoAheadGiveTheSameTokens() throws IOException {
        Path map = Files.writeString(tmp.resolve("map.json"), CPU_DISK_MAP);
        for (String prefetch : new String[] {"0", "2"}) {
            Cli r = generate("tiny-llama", "--device-map", map.toString(), "--prefetch", prefetch);
            assertThat(newTokens(r)).as("--prefetch " + prefetch).containsExactly(Cli.goldenTokens("tiny-llama"));
        }
    }

    @Test
    void upToDateOffloadDirIsReused() throws IOException {
        Path map = Files.writeString(tmp.resolve("map.json"), CPU_DISK_MAP);
        Path offload = tmp.resolve("offload");
        generate("tiny-llama", "--device-map", map.toString(), "--offload-dir", offload.toString());
        Cli again = generate("tiny-llama", "--device-map", map.toString(), "--offload-dir", offload.toString());
        assertThat(newTokens(again)).containsExactly(Cli.goldenTokens("tiny-llama"));
        assertThat(again.err()).contains("offload: reusing " + offload);
    }

    @Test
    void samplingWithASeedIsRepeatable() {
        Cli a = generate("tiny-llama", "--temperature", "0.8", "--top-k", "20", "--top-p", "0.9", "--seed", "7");
        Cli b = generate("tiny-llama", "--temperature", "0.8", "--top-k", "20", "--top-p", "0.9", "--seed", "7");
        assertThat(newTokens(a)).hasSize(8).containsExactly(newTokens(b));
    }

    @Test
    void textFormatReportsLoadTimeFirstTokenAndRate() {
        Cli r = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--input-ids", "1,17,42", "--max-new-tokens",
                "4", "--max-memory", "cpu=400KiB");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).contains("main device cpu", "loaded in ", "prompt ids: [1, 17, 42]", "new tokens: [",
                "time to first token: ", " tokens/s");
    }

    @Test
    void withoutTerminalProgressIsPlainLinesOnStderr() {
        Cli r = generate("tiny-llama", "--max-memory", "cpu=1GiB");
        assertThat(r.err()).contains("loading: 706.31 KiB from tiny-llama\n", "loading: done in ",
                "generating: up to 8 tokens after a prompt of 8\n", "generating: 8 tokens in ");
    }

    @Test
    void temperatureBelowZeroIsUsage() {
        Cli r = generate("tiny-llama", "--temperature", "-1");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("--temperature");
    }

    @Test
    void aTextPromptGoesThroughTheFoldersTokenizerOnBothBackends() {
        for (String backend : new String[] {"pytorch", "onnx"}) {
            Cli r = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--backend", backend, "--prompt", "Hi!",
                    "--max-new-tokens", "2", "--format", "json");
            assertThat(r.exitCode()).as(r.toString()).isZero();
            assertThat(Cli.longs(r.json().get("prompt_ids"))).as(backend).containsExactly(72, 105, 33);
            assertThat(r.json().get("text").asText()).as(backend).hasSize(2);
        }
    }

    @Test
    void generateTakesThePlanningOptionsAndTheOffloadFolderAlias(@org.junit.jupiter.api.io.TempDir Path tmp) {
        Cli r = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--input-ids", Cli.goldenPrompt("tiny-llama"),
                "--max-memory", "cpu=300KiB", "--strategy", "sequential", "--no-split-module-classes",
                "LlamaDecoderLayer", "--offload-folder", tmp.resolve("offload").toString(), "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(Cli.longs(r.json().get("new_tokens"))).containsExactly(Cli.goldenTokens("tiny-llama"));
        assertThat(tmp.resolve("offload").resolve("index.json")).exists();
    }

    @Test
    void generatePreloadsTheFamilysBlockClassByDefault() {
        String[] args = {"generate", "--model", Cli.model("tiny-llama"), "--input-ids", "1,2,3", "--max-memory",
                "cpu=1GiB", "--max-new-tokens", "1", "--format", "json"};
        assertThat(Cli.run(args).json().get("hooked_modules").asInt()).isEqualTo(11);
        String[] off = java.util.Arrays.copyOf(args, args.length + 2);
        off[args.length] = "--preload";
        off[args.length + 1] = "none";
        assertThat(Cli.run(off).json().get("hooked_modules").asInt()).isEqualTo(55);
    }

    @Test
    void dtypeFloat16LoadsHalfTheWeightBytes() {
        Cli r = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--input-ids", "1,2,3", "--max-memory",
                "cpu=1GiB", "--dtype", "float16", "--max-new-tokens", "2");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        // 706.25 KiB of float32 weights halved, plus the float32 rotary frequencies (64 B) computed from config.json
        assertThat(r.out()).contains("cpu 353.19 KiB resident, 0 B offloaded to host memory, 0 B offloaded to disk");
    }

    @Test
    void dtypeWithTheOnnxBackendIsUsage() {
        Cli r = Cli.run("generate", "--backend", "onnx", "--model", Cli.model("tiny-llama"), "--input-ids", "1,2",
                "--dtype", "float16");
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("--dtype: not supported with --backend onnx");
    }
}
