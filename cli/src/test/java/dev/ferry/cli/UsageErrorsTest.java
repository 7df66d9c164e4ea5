package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad usage exits with 2 and one line naming the option or file; runtime failures exit with 1 and the cause. */
class UsageErrorsTest {

    @TempDir
    Path tmp;

    private static void assertUsage(Cli r, String... fragments) {
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err().strip().lines()).as(r.toString()).hasSize(1);
        assertThat(r.err()).contains(fragments);
        assertThat(r.out()).isEmpty();
    }

    @Test
    void missingModelFolderNamesTheOptionAndFolder() {
        assertUsage(Cli.run("plan", "--model", tmp.resolve("nope").toString()),
                "ferry plan:", "--model", "no such folder", "nope");
    }

    @Test
    void folderWithoutConfigIsRejected() {
        assertUsage(Cli.run("explain", "--model", tmp.toString(), "--device-map", "auto"),
                "--model", "has no config.json (nor model.onnx)");
    }

    @Test
    void missingDeviceMapFileNamesTheFile() {
        assertUsage(Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map",
                tmp.resolve("map.json").toString()), "--device-map", "no such file", "map.json");
    }

    @Test
    void deviceMapThatIsNotJsonNamesTheFile() throws IOException {
        Path map = Files.writeString(tmp.resolve("bad.json"), "{\"model\": ");
        assertUsage(Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", map.toString()),
                "--device-map", "bad.json", "not valid JSON");
    }

    @Test
    void deviceMapWithAnUnknownDeviceNamesTheEntry() throws IOException {
        Path map = Files.writeString(tmp.resolve("bad.json"), "{\"\": \"tpu\"}");
        assertUsage(Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", map.toString()),
                "--device-map", "bad.json", "unknown device 'tpu'");
    }

    @Test
    void deviceMapNamingModulesTheModelLacksIsUsage() throws IOException {
        Path map = Files.writeString(tmp.resolve("map.json"), "{\"transformer.h\": 0}");
        assertUsage(Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", map.toString()),
                "--device-map", "map.json", "transformer.h");
    }

    @Test
    void badSizeStringNamesTheOptionAndSize() {
        assertUsage(Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=12XB"),
                "--max-memory", "12XB");
    }

    @Test
    void budgetWithoutDeviceIsUsage() {
        assertUsage(Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "2GiB"),
                "--max-memory", "DEVICE=SIZE");
    }

    @Test
    void unknownStrategyNamesTheChoices() {
        assertUsage(Cli.run("plan", "--model", Cli.model("tiny-llama"), "--strategy", "greedy"),
                "--strategy", "greedy", "balanced_low_0");
    }

    @Test
    void unknownFormatIsUsage() {
        assertUsage(Cli.run("plan", "--model", Cli.model("tiny-llama"), "--format", "xml"), "--format", "xml");
    }

    @Test
    void unknownOptionIsUsage() {
        assertUsage(Cli.run("generate", "--model", Cli.model("tiny-llama"), "--input-ids", "1", "--beams", "4"),
                "ferry generate:", "--beams");
    }

    @Test
    void missingRequiredOptionIsUsage() {
        assertUsage(Cli.run("explain", "--device-map", "auto"), "--model");
    }

    @Test
    void generateNeedsPromptOrIds() {
        assertUsage(Cli.run("generate", "--model", Cli.model("tiny-llama")), "--prompt", "--input-ids");
    }

    @Test
    void promptAndIdsTogetherAreUsage() {
        assertUsage(Cli.run("generate", "--model", Cli.model("tiny-llama"), "--prompt", "hi", "--input-ids", "1"),
                "mutually exclusive");
    }

    @Test
    void badTokenIdIsUsage() {
        assertUsage(Cli.run("generate", "--model", Cli.model("tiny-llama"), "--input-ids", "1,x"),
                "--input-ids", "'x'");
    }

    @Test
    void negativePrefetchIsUsage() {
        assertUsage(Cli.run("generate", "--model", Cli.model("tiny-llama"), "--input-ids", "1,2", "--prefetch", "-1"),
                "--prefetch", "-1");
    }

    @Test
    void textPromptWithoutTokenizerIsUsage() {
        assertUsage(Cli.run("generate", "--model", Cli.model("tiny-gpt2"), "--prompt", "hello"),
                "--prompt", "tokenizer.json", "--input-ids");
    }

    @Test
    void missingCommandIsUsage() {
        assertUsage(Cli.run("--max-memory", "cpu=1GiB"), "ferry:");
    }

    @Test
    void corruptWeightsAreARuntimeFailureWithTheCause() throws IOException {
        Path model = Files.createDirectory(tmp.resolve("broken"));
        Files.copy(Path.of(Cli.model("tiny-llama"), "config.json"), model.resolve("config.json"));
        Files.writeString(model.resolve("model.safetensors"), "not a safetensors file");
        Cli r = Cli.run("generate", "--model", model.toString(), "--input-ids", "1,2", "--device-map", "auto",
                "--max-memory", "cpu=1GiB");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(1);
        assertThat(r.err()).contains("ferry generate: error:", "model.safetensors");
    }

    @Test
    void aDeviceGivenTwoBudgetsIsRefusedNamingIt() {
        assertUsage(Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "cpu=1GiB,cpu=2GiB"),
                "--max-memory", "device cpu has two budgets (cpu given twice)");
    }

    @Test
    void twoSpellingsOfOneAcceleratorAreRefusedNamingBoth() {
        assertUsage(Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memory", "0=1GiB,gpu0=2GiB"),
                "device gpu0 has two budgets (0 and gpu0 are the same device)");
    }

    @Test
    void aMistypedOptionGetsTheNearestName() {
        assertUsage(Cli.run("plan", "--model", Cli.model("tiny-llama"), "--max-memroy", "cpu=1GiB"),
                "ferry plan: unknown option '--max-memroy'; did you mean --max-memory?");
    }

    @Test
    void aMistypedCommandGetsTheNearestName() {
        assertUsage(Cli.run("plam", "--model", Cli.model("tiny-llama")),
                "ferry: unknown command 'plam'; did you mean plan?");
    }

    @Test
    void anOptionResemblingNothingGetsNoSuggestion() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--zzzzzzzz");
        assertUsage(r, "unknown option '--zzzzzzzz'");
        assertThat(r.err()).doesNotContain("did you mean");
    }

    @Test
    void anUnknownNoSplitClassIsWarnedAboutOnce() {
        Cli r = Cli.run("plan", "--model", Cli.model("tiny-llama"), "--no-split", "LlamaDecoderLyer",
                "--max-memory", "cpu=1GiB");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.err().lines().filter(l -> l.contains("LlamaDecoderLyer"))).singleElement().asString()
                .startsWith("warning: --no-split LlamaDecoderLyer: no module of the model has this class");
    }
}
