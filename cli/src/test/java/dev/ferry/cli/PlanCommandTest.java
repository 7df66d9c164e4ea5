package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** {@code ferry plan}: device maps in Accelerate's form with per-device totals, from config.json only. */
class PlanCommandTest {

    private static JsonNode parse(String json) throws IOException {
        return new ObjectMapper().readTree(json);
    }

    @Test
    void cpuBudgetKeepsEmbeddingsAndOneLayerResidentAndSpillsTheRestToDisk() throws IOException {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=400KiB", "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.json()).isEqualTo(parse("""
                {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
                 "model.layers.2": "disk", "model.layers.3": "disk", "model.norm": "disk",
                 "model.rotary_emb": "disk", "lm_head": "disk"}"""));
    }

    @Test
    void acceleratorBudgetsGiveThreeTiersWithoutAnAccelerator() throws IOException {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "0=367KiB,cpu=297KiB",
                "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.json()).isEqualTo(parse("""
                {"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": "cpu", "model.layers.2": "disk",
                 "model.layers.3": "disk", "model.norm": "disk", "model.rotary_emb": "disk", "lm_head": "disk"}"""));
    }

    @Test
    void jsonFormatPutsPerDeviceTotalsOnStderr() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "0=367KiB,cpu=297KiB",
                "--format", "json");
        assertThat(r.err()).contains(
                "gpu0      208.50 KiB    367.00 KiB    144.50 KiB",
                "cpu       144.50 KiB    297.00 KiB    144.50 KiB",
                "disk      353.31 KiB     unbounded             -",
                "total     706.31 KiB");
    }

    @Test
    void tableListsModulesAndTotals() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=400KiB");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).startsWith("device map of tiny-llama (LlamaForCausalLM, 706.31 KiB), strategy auto, "
                + "no-split [LlamaDecoderLayer], preload [LlamaDecoderLayer]\n").contains(
                "model.embed_tokens  cpu\n",
                "model.layers.1      disk\n",
                "cpu       208.50 KiB    400.00 KiB    144.50 KiB\n",
                "total     706.31 KiB\n");
    }

    @Test
    void enoughMemoryPutsTheWholeModelOnOneDevice() throws IOException {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=1GiB", "--format", "json");
        assertThat(r.json()).isEqualTo(parse("{\"\": \"cpu\"}"));
    }

    @Test
    void dtypeFloat16HalvesTheSizes() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=1GiB", "--dtype", "float16");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).contains("total     353.16 KiB");
    }

    @Test
    void noSplitWithPreloadOffOverridesTheFamilyDefault() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=400KiB",
                "--no-split", "LlamaAttention,LlamaMLP", "--preload", "none");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).contains("no-split [LlamaAttention, LlamaMLP]", "model.layers.1.self_attn");
    }

    @Test
    void tiedLmHeadStaysWithTheEmbeddings() throws IOException {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-gpt2"), "--max-memory", "0=300KiB", "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        JsonNode map = r.json();
        assertThat(map.get("lm_head")).isEqualTo(map.get("transformer.wte"));
    }

    @Test
    void readsNoWeights() throws IOException {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("config-only");
        java.nio.file.Files.copy(java.nio.file.Path.of(Cli.model("tiny-llama"), "config.json"),
                dir.resolve("config.json"));
        Cli r = Cli.run("plan", "--model", dir.toString(), "--max-memory", "cpu=400KiB", "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.json().get("model.layers.3").asText()).isEqualTo("disk");
    }

    @Test
    void aCheckpointWhoseHeadersDoNotMatchTheConfigIsNamedBeforeAnyPlan(@org.junit.jupiter.api.io.TempDir Path dir)
            throws Exception {
        Path fixture = Cli.fixtures().resolve("tiny-llama");
        java.nio.file.Files.copy(fixture.resolve("config.json"), dir.resolve("config.json"));
        new dev.ferry.core.weights.SafetensorsWriter()
                .add("model.embed_tokens.weight", dev.ferry.core.tensor.TensorSpec.of(dev.ferry.core.tensor.DType.FLOAT32, 256, 32),
                        java.nio.ByteBuffer.allocate(256 * 32 * 4))
                .write(dir.resolve("model.safetensors"));
        Cli r = Cli.run("plan", "--model", dir.toString(), "--max-memory", "cpu=1GiB");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(1);
        assertThat(r.err()).contains("model.embed_tokens.weight").contains("[256, 32]").contains("[256, 64]");
    }

    @Test
    void thePlanSaysTheCheckpointHeadersMatch() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=1GiB");
        assertThat(r.out()).contains("checkpoint: 39 tensors in 4 safetensors file(s) match the model (headers only)");
    }

    @Test
    void theReservedColumnIsExplainedUnderTheTotals() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=400KiB");
        assertThat(r.out()).endsWith("total     706.31 KiB\n" + PlanCommand.RESERVED_NOTE + "\n");
    }

    @Test
    void aPlanWithoutReserveHasNoNote() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=1GiB");
        assertThat(r.out()).endsWith("total     706.31 KiB\n").doesNotContain("reserved:");
    }

    @Test
    void aPreloadClassIsNeverSplitWhateverNoSplitSays() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=400KiB",
                "--no-split", "LlamaAttention,LlamaMLP");
        assertThat(r.out()).contains("preload [LlamaDecoderLayer]", "model.layers.1      disk\n")
                .doesNotContain("model.layers.1.self_attn");
    }
}
