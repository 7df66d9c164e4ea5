package dev.ferry.core.weights;

import static dev.ferry.core.weights.TestFiles.bytesOf;
import static dev.ferry.core.weights.TestFiles.floats;
import static dev.ferry.core.weights.TestFiles.le;
import static dev.ferry.core.weights.TestFiles.raw;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ReadOnlyBufferException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class SafetensorsFileTest {

    @TempDir
    Path dir;

    private static byte[] randomBytes(long seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void writeThenReadIsBitExactForEveryDtype(DType dtype) {
        TensorSpec spec = TensorSpec.of(dtype, 3, 5);
        byte[] data = randomBytes(dtype.ordinal(), (int) spec.byteSize());
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter().add("w", spec, le(data)).write(file);

        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertThat(f.spec("w")).isEqualTo(spec);
            assertThat(bytesOf(f.bytes("w"))).isEqualTo(data);
        }
    }

    @Test
    void mixedDtypesRoundTripInOneFile() {
        byte[] a = floats(1f, 2f, 3f);
        byte[] b = randomBytes(1, 5);
        byte[] c = randomBytes(2, 16);
        Path file = dir.resolve("m.safetensors");
        new SafetensorsWriter()
                .add("a", TensorSpec.of(DType.FLOAT32, 3), le(a))
                .add("b", TensorSpec.of(DType.INT8, 5), le(b))
                .add("c", TensorSpec.of(DType.FLOAT64, 2), le(c))
                .write(file);

        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertThat(f.keys()).containsExactlyInAnyOrder("a", "b", "c");
            assertThat(bytesOf(f.bytes("a"))).isEqualTo(a);
            assertThat(bytesOf(f.bytes("b"))).isEqualTo(b);
            assertThat(bytesOf(f.bytes("c"))).isEqualTo(c);
            assertThat(f.bytes("a").getFloat(8)).isEqualTo(3f);
        }
    }

    @Test
    void writerLaysOutTheHeaderAsTheReferenceImplementation() throws IOException {
        Path file = dir.resolve("ref.safetensors");
        new SafetensorsWriter().add("attn.0", TensorSpec.of(DType.FLOAT32, 1, 2, 3),
                le(floats(0, 1, 2, 3, 4, 5))).write(file);

        String json = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
        int padded = (json.length() + 7) / 8 * 8;
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(b.getLong(0)).isEqualTo(padded);
        assertThat(new String(bytes, 8, padded, java.nio.charset.StandardCharsets.UTF_8))
                .isEqualTo(json + " ".repeat(padded - json.length()));
        assertThat(bytes).hasSize(8 + padded + 24);
        assertThat(b.getFloat(8 + padded + 4)).isEqualTo(1f);
    }

    @Test
    void writerOrdersTensorsByDecreasingAlignmentThenName() {
        Path file = dir.resolve("o.safetensors");
        new SafetensorsWriter()
                .add("z8", TensorSpec.of(DType.INT8, 3), le(new byte[3]))
                .add("b32", TensorSpec.of(DType.FLOAT32, 1), le(new byte[4]))
                .add("a32", TensorSpec.of(DType.FLOAT32, 1), le(new byte[4]))
                .add("x64", TensorSpec.of(DType.FLOAT64, 1), le(new byte[8]))
                .write(file);

        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertThat(f.keys()).containsExactly("x64", "a32", "b32", "z8");
            assertThat(f.entry("z8").begin()).isEqualTo(16);
            assertThat(f.dataStart() % 8).isZero();
        }
    }

    @Test
    void readsMetadataStrings() {
        Path file = dir.resolve("meta.safetensors");
        new SafetensorsWriter().metadata("source", "ferry").add("x", TensorSpec.of(DType.UINT8, 1), le(new byte[1]))
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertThat(f.metadata()).containsEntry("format", "pt").containsEntry("source", "ferry");
        }
    }

    @Test
    void zeroDimAndEmptyTensorsRoundTrip() {
        Path file = dir.resolve("e.safetensors");
        new SafetensorsWriter()
                .add("scalar", TensorSpec.of(DType.FLOAT32), le(floats(7.5f)))
                .add("empty", TensorSpec.of(DType.FLOAT32, 0, 4), le(new byte[0]))
                .write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertThat(f.spec("scalar").shape()).isEmpty();
            assertThat(f.bytes("scalar").getFloat(0)).isEqualTo(7.5f);
            assertThat(f.spec("empty")).isEqualTo(TensorSpec.of(DType.FLOAT32, 0, 4));
            assertThat(f.bytes("empty").remaining()).isZero();
        }
    }

    @Test
    void viewsAreReadOnlyLittleEndianAndStartAtZero() throws IOException {
        Path file = raw(dir.resolve("v.safetensors"),
                "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", floats(1.5f, -2f));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            ByteBuffer v = f.bytes("x");
            assertThat(v.isReadOnly()).isTrue();
            assertThat(v.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
            assertThat(v.position()).isZero();
            assertThat(v.limit()).isEqualTo(8);
            assertThat(v.getFloat(4)).isEqualTo(-2f);
            assertThatThrownBy(() -> v.put(0, (byte) 1)).isInstanceOf(ReadOnlyBufferException.class);
        }
    }

    @Test
    void repeatedReadsGiveIndependentViewsOfTheSameBytes() throws IOException {
        Path file = raw(dir.resolve("r.safetensors"),
                "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", floats(1.5f, -2f));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            ByteBuffer first = f.bytes("x");
            first.getFloat();
            ByteBuffer second = f.bytes("x");
            assertThat(second.position()).isZero();
            assertThat(second.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
            assertThat(second.getFloat()).isEqualTo(1.5f);
        }
    }

    @Test
    void fileWithoutMetadataIsTakenAsPt() throws IOException {
        Path file = raw(dir.resolve("nometa.safetensors"),
                "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", floats(1f));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertThat(f.metadata()).isEmpty();
            assertThat(f.bytes("x").getFloat(0)).isEqualTo(1f);
        }
    }

    @Test
    void absentKeyIsAnErrorNamingIt() throws IOException {
        Path file = raw(dir.resolve("a.safetensors"),
                "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", floats(1f));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertThatThrownBy(() -> f.spec("y")).isInstanceOf(NoSuchElementException.class)
                    .hasMessageContaining("'y'");
        }
    }

    @Test
    void readingAfterCloseFails() throws IOException {
        Path file = raw(dir.resolve("c.safetensors"),
                "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", floats(1f));
        SafetensorsFile f = SafetensorsFile.open(file);
        f.close();
        assertThatThrownBy(() -> f.bytes("x")).isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
    }

    @Test
    void chunksSplitATensorOnElementBoundaries() throws IOException {
        Path file = raw(dir.resolve("ch.safetensors"),
                "{\"x\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,20]}}", floats(1, 2, 3, 4, 5));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            List<ByteBuffer> chunks = f.chunks("x", 10);
            assertThat(chunks).extracting(ByteBuffer::remaining).containsExactly(8, 8, 4);
            assertThat(chunks.get(2).getFloat(0)).isEqualTo(5f);
        }
    }

    @Test
    void tensorOver2GiBIsReadInChunksNotAsOneBuffer() throws IOException {
        long size = (1L << 31) + 16;
        String header = "{\"big\":{\"dtype\":\"U8\",\"shape\":[" + size + "],\"data_offsets\":[0," + size + "]}}";
        Path file = raw(dir.resolve("big.safetensors"), header, new byte[0]);
        long dataStart = Files.size(file);
        try (RandomAccessFile r = new RandomAccessFile(file.toFile(), "rw")) {
            r.setLength(dataStart + size); // sparse: no disk blocks for the zeros
            r.seek(dataStart + size - 1);
            r.write(42);
        }
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertThatThrownBy(() -> f.bytes("big")).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("'big'").hasMessageContaining("chunks");
            List<ByteBuffer> chunks = f.chunks("big");
            assertThat(chunks).extracting(ByteBuffer::remaining)
                    .containsExactly(SafetensorsFile.MAX_CHUNK_BYTES, 24);
            ByteBuffer last = chunks.get(1);
            assertThat(last.get(23)).isEqualTo((byte) 42);
        }
    }

    // ---------------------------------------------------------------- corrupt files

    private Path valid() {
        Path file = dir.resolve("good.safetensors");
        new SafetensorsWriter()
                .add("a", TensorSpec.of(DType.FLOAT32, 4), le(floats(1, 2, 3, 4)))
                .add("b", TensorSpec.of(DType.FLOAT32, 2), le(floats(5, 6)))
                .write(file);
        return file;
    }

    @Test
    void truncatedFileIsAnErrorNamingTheTensorPastTheEnd() throws IOException {
        Path file = valid();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 4);
        }
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining(file.toString()).hasMessageContaining("tensor 'b'")
                .hasMessageContaining("past the end of the data section");
    }

    @Test
    void fileShorterThanTheLengthPrefixIsAnError() throws IOException {
        Path file = dir.resolve("tiny.safetensors");
        Files.write(file, new byte[] {1, 2, 3});
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("3 bytes").hasMessageContaining("8-byte header length");
    }

    @Test
    void headerLengthPastTheEndIsAnError() throws IOException {
        Path file = raw(dir.resolve("h.safetensors"), 1000, "{}".getBytes(), new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("header length 1000 runs past the end of the file (10 bytes");
    }

    @Test
    void hugeHeaderLengthIsAnErrorNotAnAllocation() throws IOException {
        Path file = raw(dir.resolve("huge.safetensors"), -1L, "{}".getBytes(), new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("not a safetensors file: header length field out of range")
                .hasMessageNotContaining("18446744073709551615").hasMessageNotContaining("-1 ");
    }

    @Test
    void fileThatIsNotSafetensorsIsNamedWithoutEchoingItsBytes() throws IOException {
        // the first 8 bytes of a text file, read as a length, are absurd; they must not be printed back
        Path file = Files.writeString(dir.resolve("passwd.safetensors"), "root:x:0:0:root:/root:/bin/bash\n");
        long asLength = ByteBuffer.wrap(Files.readAllBytes(file), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining(file.toString()).hasMessageContaining("not a safetensors file")
                .hasMessageNotContaining(Long.toString(asLength)).hasMessageNotContaining(Long.toUnsignedString(asLength))
                .hasMessageNotContaining("root:x");
    }

    @Test
    void headerNotStartingWithABraceIsNamedWithoutEchoingIt() throws IOException {
        Path file = raw(dir.resolve("text.safetensors"), "secret-token-123", new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("not a safetensors file").hasMessageNotContaining("secret");
    }

    @Test
    void badJsonIsAnError() throws IOException {
        Path file = raw(dir.resolve("j.safetensors"), "{\"a\":{\"dtype\":\"F32\",", new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("not valid JSON");
    }

    @Test
    void headerNotStartingWithABraceIsAnError() throws IOException {
        Path file = raw(dir.resolve("s.safetensors"), "[1, 2]", new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("does not start with '{'");
    }

    @Test
    void invalidUtf8HeaderIsAnError() throws IOException {
        byte[] header = {'{', (byte) 0xC3, (byte) 0x28, '}'};
        Path file = raw(dir.resolve("u.safetensors"), header.length, header, new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("UTF-8");
    }

    @Test
    void duplicateTensorNamesAreAnError() throws IOException {
        Path file = raw(dir.resolve("d.safetensors"), "{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", new byte[2]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("Duplicate field 'x'");
    }

    @Test
    void overlappingRangesAreAnErrorNamingBothTensors() throws IOException {
        Path file = raw(dir.resolve("ov.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", new byte[24]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'b'").hasMessageContaining("overlap tensor 'a' [0, 16]");
    }

    @Test
    void holeBetweenTensorsIsAnError() throws IOException {
        Path file = raw(dir.resolve("hole.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", new byte[12]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'b'").hasMessageContaining("hole of 4 bytes after tensor 'a'");
    }

    @Test
    void bytesAfterTheLastTensorAreAnError() throws IOException {
        Path file = raw(dir.resolve("tail.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[8]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("cover 4 bytes of the data section but it is 8 bytes");
    }

    @Test
    void shapeDisagreeingWithTheByteRangeIsAnError() throws IOException {
        Path file = raw(dir.resolve("size.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}", new byte[8]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'a'")
                .hasMessageContaining("shape [4] of F32 (4 bytes each) needs 16 bytes, but data_offsets [0, 8] span 8");
    }

    @Test
    void shapeOverflowingALongIsAnError() throws IOException {
        Path file = raw(dir.resolve("of.safetensors"),
                "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'a'").hasMessageContaining("overflows");
    }

    @Test
    void negativeShapeIsAnError() throws IOException {
        Path file = raw(dir.resolve("neg.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", new byte[4]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'a'").hasMessageContaining("non-negative integers");
    }

    @Test
    void unknownDtypeIsAnErrorListingTheKnownOnes() throws IOException {
        Path file = raw(dir.resolve("dt.safetensors"),
                "{\"a\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'a'").hasMessageContaining("'F12'").hasMessageContaining("BF16");
    }

    @Test
    void nonStringMetadataIsAnError() throws IOException {
        Path file = raw(dir.resolve("mv.safetensors"), "{\"__metadata__\":{\"format\":\"pt\",\"n\":3}}", new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("'n' must be a string");
    }

    @Test
    void tensorflowFormatIsRejectedAsAccelerateDoes() throws IOException {
        Path file = raw(dir.resolve("tf.safetensors"), "{\"__metadata__\":{\"format\":\"tf\"}}", new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("format 'tf'").hasMessageContaining("expected 'pt'");
    }

    @Test
    void unknownFormatIsRejected() throws IOException {
        Path file = raw(dir.resolve("x.safetensors"), "{\"__metadata__\":{\"format\":\"onnx\"}}", new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("no valid format (got 'onnx'");
    }

    @Test
    void metadataWithoutFormatIsRejected() throws IOException {
        Path file = raw(dir.resolve("nf.safetensors"), "{\"__metadata__\":{\"k\":\"v\"}}", new byte[0]);
        assertThatThrownBy(() -> SafetensorsFile.open(file)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("no valid format (got none");
    }

    @Test
    void anyFormatIsAcceptedWhenOpenedAsAPlainTensorFile() throws IOException {
        Path file = raw(dir.resolve("tf2.safetensors"),
                "{\"__metadata__\":{\"format\":\"tf\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                new byte[] {9});
        try (SafetensorsFile f = SafetensorsFile.openAnyFormat(file)) {
            assertThat(f.bytes("a").get(0)).isEqualTo((byte) 9);
        }
    }
}
