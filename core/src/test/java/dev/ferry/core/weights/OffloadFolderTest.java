package dev.ferry.core.weights;

import static dev.ferry.core.weights.TestFiles.bytesOf;
import static dev.ferry.core.weights.TestFiles.floats;
import static dev.ferry.core.weights.TestFiles.le;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class OffloadFolderTest {

    @TempDir
    Path dir;

    private static final TensorSpec W = TensorSpec.of(DType.FLOAT32, 2, 3);

    private static ByteBuffer leBuffer(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void writtenFolderReadsBackBitExactForEveryDtype(DType dtype) {
        TensorSpec spec = TensorSpec.of(dtype, 4, 3);
        byte[] data = new byte[(int) spec.byteSize()];
        new Random(dtype.ordinal()).nextBytes(data);
        OffloadFolder.writer(dir).put("layer.weight", spec, le(data)).commit().close();

        try (OffloadFolder f = OffloadFolder.open(dir)) {
            assertThat(f.spec("layer.weight")).isEqualTo(spec);
            assertThat(bytesOf(f.bytes("layer.weight"))).isEqualTo(data);
            assertThat(f.bytes("layer.weight").isReadOnly()).isTrue();
        }
    }

    @Test
    void aRangeOfADatIsReadAloneOnceTheWholeFileWasChecked() throws IOException {
        OffloadFolder.writer(dir).put("w", W, le(floats(1, 2, 3, 4, 5, 6))).commit().close();

        try (OffloadFolder f = OffloadFolder.open(dir)) {
            assertThat(bytesOf(f.bytes("w", 12, 8))).isEqualTo(floats(4, 5)); // first read: whole, CRC32C checked
            assertThat(bytesOf(f.bytes("w", 4, 8))).isEqualTo(floats(2, 3)); // then by range
            assertThat(f.bytes("w", 0, 24).isReadOnly()).isTrue();
            assertThatThrownBy(() -> f.bytes("w", 20, 8)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("'w'").hasMessageContaining("24 bytes");
        }
    }

    @Test
    void writtenFolderHasAcceleratesFilesAndIndexLayout() throws IOException {
        OffloadFolder.writer(dir)
                .put("w", W, le(floats(1, 2, 3, 4, 5, 6)))
                .put("s", TensorSpec.of(DType.FLOAT32), le(floats(9)))
                .put("b", TensorSpec.of(DType.BFLOAT16, 2), le(new byte[] {(byte) 0x80, 0x3F, 0, (byte) 0xC0}))
                .commit().close();

        // what python3 -c "json.dump({...}, f, indent=2)" writes for the same index, as Accelerate does
        String expected = "{\n  \"w\": {\n    \"dtype\": \"float32\",\n    \"shape\": [\n      2,\n      3\n    ]\n  },\n"
                + "  \"s\": {\n    \"dtype\": \"float32\",\n    \"shape\": []\n  },\n"
                + "  \"b\": {\n    \"dtype\": \"bfloat16\",\n    \"shape\": [\n      2\n    ]\n  }\n}";
        assertThat(Files.readString(dir.resolve("index.json"))).isEqualTo(expected);
        assertThat(Files.size(dir.resolve("w.dat"))).isEqualTo(24);
        assertThat(Files.size(dir.resolve("s.dat"))).isEqualTo(4); // 0-d: one element
        assertThat(Files.readAllBytes(dir.resolve("b.dat"))).containsExactly(0x80, 0x3F, 0, 0xC0);
    }

    @Test
    void folderLaidOutByAccelerateIsRead() throws IOException {
        // as accelerate.utils.offload_state_dict writes it: numpy dtype names, bf16 bits saved as int16 and
        // tagged "bfloat16", a 0-d tensor with shape [] in the index and one element in its memmap
        Files.writeString(dir.resolve("index.json"), "{\n"
                + "  \"model.layers.0.mlp.up_proj.weight\": {\n    \"dtype\": \"float32\",\n    \"shape\": [\n      2,\n      2\n    ]\n  },\n"
                + "  \"model.norm.weight\": {\n    \"dtype\": \"bfloat16\",\n    \"shape\": [\n      3\n    ]\n  },\n"
                + "  \"model.step\": {\n    \"dtype\": \"int64\",\n    \"shape\": []\n  },\n"
                + "  \"model.mask\": {\n    \"dtype\": \"bool\",\n    \"shape\": [\n      2\n    ]\n  }\n}");
        Files.write(dir.resolve("model.layers.0.mlp.up_proj.weight.dat"), floats(1.5f, -2f, 0.25f, 8f));
        ByteBuffer bf16 = leBuffer(6).putShort((short) 0x3F80).putShort((short) 0xC040).putShort((short) 0x7F80);
        Files.write(dir.resolve("model.norm.weight.dat"), bf16.array());
        Files.write(dir.resolve("model.step.dat"), leBuffer(8).putLong(123456789012L).array());
        Files.write(dir.resolve("model.mask.dat"), new byte[] {1, 0});

        try (OffloadFolder f = OffloadFolder.open(dir)) {
            assertThat(f.spec("model.layers.0.mlp.up_proj.weight")).isEqualTo(TensorSpec.of(DType.FLOAT32, 2, 2));
            assertThat(f.bytes("model.layers.0.mlp.up_proj.weight").getFloat(12)).isEqualTo(8f);
            assertThat(f.spec("model.norm.weight")).isEqualTo(TensorSpec.of(DType.BFLOAT16, 3));
            assertThat(f.bytes("model.norm.weight").getShort(2)).isEqualTo((short) 0xC040);
            assertThat(f.spec("model.step")).isEqualTo(TensorSpec.of(DType.INT64));
            assertThat(f.bytes("model.step").getLong(0)).isEqualTo(123456789012L);
            assertThat(f.spec("model.mask")).isEqualTo(TensorSpec.of(DType.BOOL, 2));
            assertThat(f.bytes("model.mask").get(0)).isEqualTo((byte) 1);
        }
    }

    @Test
    void entryPointingIntoASafetensorsFileReadsItInPlace() throws IOException {
        Path st = dir.resolve("ckpt.safetensors");
        new SafetensorsWriter().add("x", W, le(floats(1, 2, 3, 4, 5, 6))).write(st);
        Path folder = Files.createDirectory(dir.resolve("offload"));
        // Accelerate's form; weight_name may differ from the key and defaults to it
        Files.writeString(folder.resolve("index.json"), "{\"a\": {\"safetensors_file\": \"" + st.toAbsolutePath()
                + "\", \"weight_name\": \"x\", \"dtype\": \"float32\"},"
                + " \"x\": {\"safetensors_file\": \"../ckpt.safetensors\"}}");

        // the checkpoint's folder is where an Accelerate index may point; the caller names it
        try (OffloadFolder f = OffloadFolder.open(folder, List.of(dir))) {
            assertThat(f.spec("a")).isEqualTo(W);
            assertThat(f.bytes("a").getFloat(20)).isEqualTo(6f);
            assertThat(f.bytes("x").getFloat(0)).isEqualTo(1f);
            assertThat(f.entry("a")).isInstanceOf(OffloadFolder.SafetensorsEntry.class);
            assertThat(f.entry("a").file()).isEqualTo(st.toAbsolutePath());
        }
    }

    @Test
    void safetensorsEntryWithAnotherDtypeConvertsOnRead() throws IOException {
        Path st = dir.resolve("ckpt.safetensors");
        new SafetensorsWriter().add("x", TensorSpec.of(DType.FLOAT32, 2), le(floats(1f, -0.5f))).write(st);
        Path folder = Files.createDirectory(dir.resolve("offload"));
        Files.writeString(folder.resolve("index.json"),
                "{\"x\": {\"safetensors_file\": \"" + st.toAbsolutePath() + "\", \"dtype\": \"float16\"}}");

        try (OffloadFolder f = OffloadFolder.open(folder, List.of(dir))) {
            assertThat(f.spec("x")).isEqualTo(TensorSpec.of(DType.FLOAT16, 2));
            assertThat(f.bytes("x").getShort(0)).isEqualTo((short) 0x3C00);
            assertThat(f.bytes("x").getShort(2)).isEqualTo((short) 0xB800);
        }
    }

    @Test
    void referencesIntoTheTinyLlamaCheckpointReadTheSameBytes() throws IOException {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(TestFiles.fixtures().resolve("tiny-llama"))) {
            String key = "model.layers.2.self_attn.q_proj.weight";
            try (OffloadFolder f = OffloadFolder.writer(dir).reference(ckpt, key).commit()) {
                assertThat(f.spec(key)).isEqualTo(ckpt.spec(key));
                assertThat(bytesOf(f.bytes(key))).isEqualTo(bytesOf(ckpt.bytes(key)));
                assertThat(Files.exists(dir.resolve(key + ".dat"))).isFalse();
            }
            assertThat(Files.readString(dir.resolve("index.json")))
                    .contains("\"safetensors_file\": \"" + ckpt.fileOf(key).path().toAbsolutePath().normalize() + "\"")
                    .contains("\"weight_name\": \"" + key + "\"").contains("\"dtype\": \"float32\"");
        }
    }

    @Test
    void writeCopiesAStoreSubset() throws IOException {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(TestFiles.fixtures().resolve("tiny-gpt2"))) {
            List<String> keys = List.of("transformer.h.0.attn.c_attn.weight", "transformer.ln_f.bias");
            try (OffloadFolder f = OffloadFolder.write(dir, ckpt, keys)) {
                assertThat(f.keys()).containsExactlyElementsOf(keys);
                for (String k : keys) {
                    assertThat(bytesOf(f.bytes(k))).as(k).isEqualTo(bytesOf(ckpt.bytes(k)));
                }
            }
        }
    }

    @Test
    void shortDatFileIsAnErrorNamingTheTensorAndSizes() throws IOException {
        OffloadFolder.writer(dir).put("w", W, le(floats(1, 2, 3, 4, 5, 6))).commit().close();
        Files.write(dir.resolve("w.dat"), floats(1, 2));
        assertThatThrownBy(() -> OffloadFolder.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'w'").hasMessageContaining("8 bytes but float32[2, 3] needs 24");
    }

    @Test
    void missingDatFileIsAnErrorNamingTheTensor() throws IOException {
        OffloadFolder.writer(dir).put("w", W, le(floats(1, 2, 3, 4, 5, 6))).commit().close();
        Files.delete(dir.resolve("w.dat"));
        assertThatThrownBy(() -> OffloadFolder.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'w'").hasMessageContaining("missing");
    }

    @Test
    void entryWithoutShapeIsAnError() throws IOException {
        Files.writeString(dir.resolve("index.json"), "{\"w\": {\"dtype\": \"float32\"}}");
        assertThatThrownBy(() -> OffloadFolder.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'w'").hasMessageContaining("needs dtype and shape");
    }

    @Test
    void nameThatWouldLeaveTheFolderIsRefused() throws IOException {
        Files.writeString(dir.resolve("index.json"), "{\"../w\": {\"dtype\": \"float32\", \"shape\": [1]}}");
        assertThatThrownBy(() -> OffloadFolder.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor '../w'");
    }

    @Test
    void folderWithoutIndexDoesNotOpen() {
        assertThatThrownBy(() -> OffloadFolder.open(dir)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("no index.json");
    }

    // ---------------------------------------------------------------- stale folders

    private void writeAB() {
        OffloadFolder.writer(dir)
                .put("a", W, le(floats(1, 2, 3, 4, 5, 6)))
                .put("b", TensorSpec.of(DType.FLOAT32, 2), le(floats(7, 8)))
                .put("c", TensorSpec.of(DType.FLOAT16, 1), le(new byte[2]))
                .commit().close();
    }

    @Test
    void matchingFolderIsNotStaleAndExtraKeysAreOnlyReported() {
        writeAB();
        OffloadFolder.Staleness s = OffloadFolder.check(dir,
                Map.of("a", W, "b", TensorSpec.of(DType.FLOAT32, 2)));
        assertThat(s.isStale()).isFalse();
        assertThat(s.extra()).containsExactly("c");
    }

    @Test
    void staleFolderReportsMissingMismatchedAndShortFiles() throws IOException {
        writeAB();
        Files.write(dir.resolve("b.dat"), floats(7));
        OffloadFolder.Staleness s = OffloadFolder.check(dir, Map.of(
                "a", TensorSpec.of(DType.FLOAT32, 3, 2),
                "b", TensorSpec.of(DType.FLOAT32, 2),
                "c", TensorSpec.of(DType.BFLOAT16, 1),
                "d", TensorSpec.of(DType.FLOAT32, 1)));
        assertThat(s.isStale()).isTrue();
        assertThat(s.missing()).containsExactly("d");
        assertThat(s.mismatched()).containsOnlyKeys("a", "c");
        assertThat(s.mismatched().get("a")).isEqualTo("expected float32[3, 2], folder has float32[2, 3]");
        assertThat(s.mismatched().get("c")).isEqualTo("expected bfloat16[1], folder has float16[1]");
        assertThat(s.unreadable()).containsOnlyKeys("b");
        assertThat(s.unreadable().get("b")).contains("4 bytes but float32[2] needs 8");
    }

    @Test
    void openingAStaleFolderForAModelIsAnErrorNamingTheKeys() {
        writeAB();
        assertThatThrownBy(() -> OffloadFolder.openExpecting(dir, Map.of("a", W, "z", W)))
                .isInstanceOf(WeightsFormatException.class).hasMessageContaining("1 missing key(s): [z]");
    }

    @Test
    void folderWithoutIndexIsStaleWithEveryKeyMissing() {
        OffloadFolder.Staleness s = OffloadFolder.check(dir, Map.of("a", W));
        assertThat(s.isStale()).isTrue();
        assertThat(s.indexFound()).isFalse();
        assertThat(s.missing()).containsExactly("a");
    }

    @Test
    void rewriteLeavesOnlyTheNewTensors() throws IOException {
        writeAB();
        try (OffloadFolder f = OffloadFolder.writer(dir).put("a", W, le(floats(6, 5, 4, 3, 2, 1))).commit()) {
            assertThat(f.keys()).containsExactly("a");
            assertThat(f.bytes("a").getFloat(0)).isEqualTo(6f);
        }
        assertThat(Files.exists(dir.resolve("b.dat"))).isFalse();
        assertThat(Files.exists(dir.resolve("c.dat"))).isFalse();
    }

    @Test
    void unfinishedRewriteNeverLooksComplete() {
        writeAB();
        OffloadFolder.Writer w = OffloadFolder.writer(dir);
        w.put("a", W, le(floats(1, 2, 3, 4, 5, 6)));
        // the writer stops here, as if the process died: no commit
        assertThat(Files.exists(dir.resolve("index.json"))).isFalse();
        assertThat(OffloadFolder.check(dir, Map.of("a", W)).isStale()).isTrue();
        assertThatThrownBy(() -> OffloadFolder.open(dir)).isInstanceOf(WeightsFormatException.class);
    }

    @Test
    void writerRefusesBytesOfTheWrongSize() {
        OffloadFolder.Writer w = OffloadFolder.writer(dir);
        assertThatThrownBy(() -> w.put("a", W, le(floats(1)))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'a'").hasMessageContaining("needs 24 bytes, got 4");
    }

    @Test
    void aFolderThatCannotBeCreatedSaysWhy() throws IOException {
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        assertThatThrownBy(() -> OffloadFolder.writer(file.resolve("sub")))
                .isInstanceOf(java.io.UncheckedIOException.class)
                .hasMessage("cannot create offload folder " + file.resolve("sub") + ": Not a directory ("
                        + file.resolve("sub") + ")");
    }
}
