package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Numbers checked at the door: the same bad input gives the same exit code on both backends (2, one line naming
 * the option and the value), before any weight is loaded.
 */
class BadInputAtTheDoorTest {

    @TempDir
    Path tmp;

    private static void assertUsage(Cli r, String... fragments) {
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err().strip().lines()).as(r.toString()).hasSize(1);
        assertThat(r.err()).as(r.toString()).contains(fragments);
        assertThat(r.out()).isEmpty();
    }

    private static Cli generate(String backend, String model, String ids, String... more) {
        String[] base = {"generate", "--backend", backend, "--model", model, "--input-ids", ids,
                "--max-memory", "cpu=300KiB"};
        String[] args = new String[base.length + more.length];
        System.arraycopy(base, 0, args, 0, base.length);
        System.arraycopy(more, 0, args, base.length, more.length);
        return Cli.run(args);
    }

    private static String ids(int count) {
        return LongStream.range(0, count).map(i -> 3 + i % 200).mapToObj(Long::toString)
                .collect(Collectors.joining(","));
    }

    /** A copy of the fixture whose config.json has {@code field} set to the JSON literal {@code literal}. */
    private Path withConfig(String fixture, String field, String literal) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve(fixture + "-" + field));
        Path src = Path.of(Cli.model(fixture));
        try (var files = Files.list(src)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.createSymbolicLink(dir.resolve(f.getFileName()), f.toAbsolutePath());
            }
        }
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode config = (ObjectNode) mapper.readTree(src.resolve("config.json").toFile());
        config.set(field, mapper.readTree(literal));
        Files.delete(dir.resolve("config.json"));
        mapper.writeValue(dir.resolve("config.json").toFile(), config);
        return dir;
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void idAtTheVocabularySizeExits2NamingIdAndVocabulary(String backend) {
        assertUsage(generate(backend, Cli.model("tiny-llama"), "1,17,256"),
                "--input-ids", "token id 256", "vocab_size is 256");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void negativeIdExits2NamingIdAndVocabulary(String backend) {
        assertUsage(generate(backend, Cli.model("tiny-gpt2"), "1,-1,42"),
                "--input-ids", "token id -1", "vocab_size is 256");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void promptLongerThanThePositionsExits2(String backend) {
        assertUsage(generate(backend, Cli.model("tiny-gpt2"), ids(129)),
                "--input-ids", "129 tokens", "128 positions");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void maxNewTokensBeyondThePositionsIsCappedWithAWarning(String backend) {
        Cli r = generate(backend, Cli.model("tiny-gpt2"), ids(126), "--max-new-tokens", "1000000000",
                "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.err()).contains("warning: --max-new-tokens 1000000000 capped to 2", "128 positions");
        assertThat(r.json().get("new_tokens").size()).isEqualTo(2);
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void generationStoppedByThePositionsSaysSoInJson(String backend) {
        Cli r = generate(backend, Cli.model("tiny-gpt2"), ids(126), "--max-new-tokens", "5", "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.json().get("stopped").asText()).isEqualTo("max_positions");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void generationStoppedByThePositionsSaysSoInText(String backend) {
        Cli r = generate(backend, Cli.model("tiny-gpt2"), ids(126), "--max-new-tokens", "5");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).contains("stopped: max_positions (the model has 128 positions: 126 prompt + 2 new "
                + "tokens; --max-new-tokens 5 not reached)");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void generationThatMadeAllItsTokensSaysMaxNewTokens(String backend) {
        Cli r = generate(backend, Cli.model("tiny-gpt2"), "1,2,3", "--max-new-tokens", "2", "--format", "json");
        assertThat(r.json().get("stopped").asText()).as(r.toString()).isEqualTo("max_new_tokens");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void inputIdsGivenTwiceAreRefusedNotJoined(String backend) {
        assertUsage(generate(backend, Cli.model("tiny-llama"), "1,2,3", "--input-ids", "4,5"),
                "--input-ids: given 2 times (1,2,3 and 4,5)", "one prompt at a time");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void unknownModuleInTheDeviceMapExits2(String backend) throws IOException {
        Path map = Files.writeString(tmp.resolve("map.json"), "{\"\": \"cpu\", \"model.layers.9\": \"cpu\"}");
        assertUsage(Cli.run("generate", "--backend", backend, "--model", Cli.model("tiny-llama"), "--input-ids",
                "1,2", "--device-map", map.toString()), "--device-map", "model.layers.9");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void zeroAttentionHeadsInConfigExits2NamingTheField(String backend) throws IOException {
        Path model = withConfig("tiny-llama", "num_attention_heads", "0");
        assertUsage(generate(backend, model.toString(), "1,2"), "--model", "num_attention_heads");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void layerCountAbove2To32InConfigExits2NamingTheField(String backend) throws IOException {
        Path model = withConfig("tiny-gpt2", "n_layer", "4294967300");
        assertUsage(generate(backend, model.toString(), "1,2"), "--model", "n_layer", "4294967300");
    }

    @Test
    void absurdLayerCountExits2AtOnceWhenPlanning() throws IOException {
        Path model = withConfig("tiny-llama", "num_hidden_layers", "2147483647");
        long start = System.nanoTime();
        assertUsage(Cli.run("plan", "--model", model.toString(), "--max-memory", "cpu=1GiB"),
                "--model", "num_hidden_layers", "2147483647");
        assertThat((System.nanoTime() - start) / 1e9).isLessThan(5.0);
    }

    @Test
    void negativeLayerCountExits2WhenExplaining() throws IOException {
        Path model = withConfig("tiny-llama", "num_hidden_layers", "-4");
        assertUsage(Cli.run("explain", "--model", model.toString(), "--device-map", "auto"),
                "--model", "num_hidden_layers", "-4");
    }

    @Test
    void deviceMapWithADuplicateKeyExits2NamingTheKey() throws IOException {
        Path map = Files.writeString(tmp.resolve("dup.json"), "{\"model\": \"cpu\", \"lm_head\": \"cpu\", "
                + "\"model\": \"disk\"}");
        assertUsage(Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", map.toString()),
                "--device-map", "dup.json", "Duplicate field 'model'");
    }

    @Test
    void deviceMapWithTrailingTextExits2NamingThePosition() throws IOException {
        Path map = Files.writeString(tmp.resolve("trail.json"), "{\"\": \"cpu\"} garbage");
        assertUsage(Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", map.toString()),
                "--device-map", "trail.json", "line 1, column");
    }
}
