package dev.ferry.core.weights;

import static dev.ferry.core.weights.TestFiles.floats;
import static dev.ferry.core.weights.TestFiles.le;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsCheckpointTest {

    @TempDir
    Path dir;

    /** Every parameter listed by a fixture's module_tree.json (buffers there are not persistent). */
    static Map<String, TensorSpec> parameters(String fixture) throws IOException {
        JsonNode tree = new ObjectMapper().readTree(TestFiles.fixtures().resolve(fixture).resolve("module_tree.json").toFile());
        Map<String, TensorSpec> out = new LinkedHashMap<>();
        for (JsonNode module : tree) {
            String name = module.get("name").asText();
            module.get("params").fields().forEachRemaining(p -> {
                long[] shape = new long[p.getValue().get("shape").size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = p.getValue().get("shape").get(i).asLong();
                }
                DType dtype = DType.fromTorch(p.getValue().get("dtype").asText());
                out.put(name.isEmpty() ? p.getKey() : name + "." + p.getKey(), new TensorSpec(shape, dtype));
            });
        }
        return out;
    }

    @Test
    void shardedTinyLlamaHoldsEveryParameterWithItsSpec() throws IOException {
        Map<String, TensorSpec> params = parameters("tiny-llama");
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(TestFiles.fixtures().resolve("tiny-llama"))) {
            assertThat(ckpt.isSharded()).isTrue();
            assertThat(ckpt.files()).hasSize(4);
            assertThat(ckpt.keys()).containsExactlyInAnyOrderElementsOf(params.keySet());
            params.forEach((k, spec) -> assertThat(ckpt.spec(k)).as(k).isEqualTo(spec));
        }
    }

    @Test
    void shardedTinyLlamaReadsValuesFromTheRightShard() {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(TestFiles.fixtures().resolve("tiny-llama"))) {
            // bits read independently with python3 struct.unpack('<3I', ...) at the tensor's data_offsets
            ByteBuffer embed = ckpt.bytes("model.embed_tokens.weight");
            assertThat(embed.getInt(0)).isEqualTo(0xbaf4f40a);
            assertThat(embed.getInt(4)).isEqualTo(0xbcee3ce3);
            assertThat(embed.getInt(8)).isEqualTo(0x3e52188a);
            assertThat(embed.remaining()).isEqualTo(256 * 64 * 4);
            assertThat(ckpt.fileOf("model.embed_tokens.weight").path().getFileName())
                    .hasToString("model-00001-of-00004.safetensors");

            ByteBuffer head = ckpt.bytes("lm_head.weight");
            assertThat(head.getInt(0)).isEqualTo(0x3dc267f4);
            assertThat(ckpt.fileOf("lm_head.weight").path().getFileName())
                    .hasToString("model-00004-of-00004.safetensors");
        }
    }

    @Test
    void keysByFileFollowsTheWeightMap() {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(TestFiles.fixtures().resolve("tiny-llama"))) {
            Map<Path, java.util.List<String>> byFile = ckpt.keysByFile();
            assertThat(byFile.values().stream().mapToInt(java.util.List::size).sum()).isEqualTo(ckpt.keys().size());
            Path last = ckpt.fileOf("lm_head.weight").path();
            assertThat(byFile.get(last)).contains("lm_head.weight", "model.layers.3.mlp.down_proj.weight");
            assertThat(ckpt.unlistedKeys()).isEmpty();
        }
    }

    @Test
    void tiedGpt2StoresNoLmHead() throws IOException {
        Map<String, TensorSpec> params = parameters("tiny-gpt2");
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(TestFiles.fixtures().resolve("tiny-gpt2"))) {
            assertThat(ckpt.isSharded()).isFalse();
            assertThat(params).containsKey("lm_head.weight");
            assertThat(ckpt.contains("lm_head.weight")).isFalse();
            params.remove("lm_head.weight");
            assertThat(ckpt.keys()).containsExactlyInAnyOrderElementsOf(params.keySet());
            params.forEach((k, spec) -> assertThat(ckpt.spec(k)).as(k).isEqualTo(spec));
            // bits read independently with python3 struct from model.safetensors
            assertThat(ckpt.bytes("transformer.wte.weight").getInt(0)).isEqualTo(0x3e448bf2);
        }
    }

    @Test
    void opensAnIndexFileOrASingleFileDirectly() {
        Path llama = TestFiles.fixtures().resolve("tiny-llama").resolve(SafetensorsCheckpoint.INDEX_FILE);
        Path gpt2 = TestFiles.fixtures().resolve("tiny-gpt2").resolve(SafetensorsCheckpoint.SINGLE_FILE);
        try (SafetensorsCheckpoint a = SafetensorsCheckpoint.open(llama);
                SafetensorsCheckpoint b = SafetensorsCheckpoint.open(gpt2)) {
            assertThat(a.keys()).hasSize(39);
            assertThat(b.keys()).hasSize(52);
        }
    }

    @Test
    void folderWithoutACheckpointIsAnError() {
        assertThatThrownBy(() -> SafetensorsCheckpoint.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("neither model.safetensors nor model.safetensors.index.json");
    }

    private void shard(String file, String... names) {
        SafetensorsWriter w = new SafetensorsWriter();
        for (String n : names) {
            w.add(n, TensorSpec.of(DType.FLOAT32, 1), le(floats(n.length())));
        }
        w.write(dir.resolve(file));
    }

    private void index(String weightMapJson) throws IOException {
        Files.writeString(dir.resolve(SafetensorsCheckpoint.INDEX_FILE),
                "{\"metadata\":{\"total_size\":8},\"weight_map\":" + weightMapJson + "}");
    }

    @Test
    void shardListedButAbsentIsAnErrorNamingIt() throws IOException {
        shard("s1.safetensors", "a");
        index("{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}");
        assertThatThrownBy(() -> SafetensorsCheckpoint.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("do not exist").hasMessageContaining("s2.safetensors (holding 'b')");
    }

    @Test
    void keyMappedToAShardThatLacksItIsAnErrorNamingBoth() throws IOException {
        shard("s1.safetensors", "a");
        shard("s2.safetensors", "b");
        index("{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\"}");
        assertThatThrownBy(() -> SafetensorsCheckpoint.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'b'").hasMessageContaining("s1.safetensors, which has no such tensor");
    }

    @Test
    void weightMapDecidesWhichShardAKeyIsReadFrom() throws IOException {
        shard("s1.safetensors", "a", "bb");
        shard("s2.safetensors", "bb");
        index("{\"a\":\"s1.safetensors\",\"bb\":\"s2.safetensors\"}");
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            assertThat(ckpt.fileOf("bb").path().getFileName()).hasToString("s2.safetensors");
            assertThat(ckpt.unlistedKeys()).containsExactly("bb (in s1.safetensors)");
            assertThat(ckpt.bytes("a").getFloat(0)).isEqualTo(1f);
        }
    }

    @Test
    void shardNameLeavingTheFolderIsAnError() throws IOException {
        index("{\"a\":\"../elsewhere.safetensors\"}");
        assertThatThrownBy(() -> SafetensorsCheckpoint.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'a'").hasMessageContaining("not a file inside");
    }

    @Test
    void indexWithoutWeightMapIsAnError() throws IOException {
        Files.writeString(dir.resolve(SafetensorsCheckpoint.INDEX_FILE), "{\"metadata\":{}}");
        assertThatThrownBy(() -> SafetensorsCheckpoint.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("no weight_map");
    }

    @Test
    void corruptShardIsAnErrorNamingTheShard() throws IOException {
        shard("s1.safetensors", "a");
        Files.write(dir.resolve("s2.safetensors"), new byte[] {1, 0, 0, 0, 0, 0, 0, 0});
        index("{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}");
        assertThatThrownBy(() -> SafetensorsCheckpoint.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("s2.safetensors").hasMessageContaining("header length 1");
    }
}
