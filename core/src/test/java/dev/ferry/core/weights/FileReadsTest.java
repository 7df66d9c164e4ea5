package dev.ferry.core.weights;

import static dev.ferry.core.weights.TestFiles.floats;
import static dev.ferry.core.weights.TestFiles.le;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Weights come from files by positional reads into memory Ferry owns, never as mappings that native code reads in
 * place: a file truncated after it was opened is an exception naming the file and the tensor, and bytes already handed
 * out stay valid.
 */
class FileReadsTest {

    @TempDir
    Path dir;

    Path checkpoint() throws IOException {
        Path file = dir.resolve("model.safetensors");
        new SafetensorsWriter()
                .add("a", TensorSpec.of(DType.FLOAT32, 4), le(floats(1, 2, 3, 4)))
                .add("b", TensorSpec.of(DType.FLOAT32, 2), le(floats(5, 6)))
                .write(file);
        return file;
    }

    static void truncate(Path file, long size) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(size);
        }
    }

    @Test
    void aReadPastTheNewEndOfAFileNamesTheFileAndTheTensor() throws IOException {
        Path file = checkpoint();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            truncate(file, size - 4);
            ByteBuffer dst = ByteBuffer.allocateDirect(8);
            assertThatThrownBy(() -> FileReads.readFully(ch, file, "b", size - 8, dst))
                    .isInstanceOf(WeightsFileChangedException.class).hasMessageContaining(file.toString())
                    .hasMessageContaining("tensor 'b'").hasMessageContaining("ends at byte " + (size - 4));
        }
    }

    @Test
    void bytesAreACopyThatOutlivesTheFilesTruncation() throws IOException {
        Path file = checkpoint();
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            ByteBuffer a = st.bytes("a");
            assertThat(st.streamsFromFile("a")).isTrue();
            truncate(file, 8);
            assertThat(a.order(ByteOrder.LITTLE_ENDIAN).getFloat(12)).isEqualTo(4f); // owned memory: no SIGBUS
            assertThatThrownBy(() -> st.bytes("b")).hasMessageContaining(file.toString());
            assertThatThrownBy(() -> st.read("b", ByteBuffer.allocateDirect(8))).hasMessageContaining(file.toString());
        }
    }

    @Test
    void readFillsTheCallersBufferFromItsPosition() throws IOException {
        try (SafetensorsFile st = SafetensorsFile.open(checkpoint())) {
            ByteBuffer dst = ByteBuffer.allocateDirect(12).order(ByteOrder.LITTLE_ENDIAN);
            dst.putFloat(-1f);
            st.read("b", dst);
            assertThat(dst.position()).isEqualTo(12);
            assertThat(new float[] {dst.getFloat(0), dst.getFloat(4), dst.getFloat(8)}).containsExactly(-1f, 5f, 6f);
        }
    }

    @Test
    void largeReadsSplitOverThreadsGiveTheFilesBytes() throws IOException {
        byte[] data = new byte[(20 << 20) + 12345];
        new Random(3).nextBytes(data);
        Path file = Files.write(dir.resolve("big.bin"), data);
        ByteBuffer dst = ByteBuffer.allocateDirect(data.length - 100);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            FileReads.readFully(ch, file, "big", 100, dst);
        }
        byte[] got = new byte[dst.remaining()];
        dst.get(got);
        assertThat(got).isEqualTo(java.util.Arrays.copyOfRange(data, 100, data.length));
    }

    @Test
    void offloadDatFilesAreReadNotMappedAndATruncatedOneIsNamed() throws IOException {
        Path folder = dir.resolve("offload");
        HostMemoryStore source = new HostMemoryStore();
        source.put("w", TensorSpec.of(DType.FLOAT32, 4), le(floats(1, 2, 3, 4)));
        try (OffloadFolder f = OffloadFolder.write(folder, source, source.keys())) {
            assertThat(f.streamsFromFile("w")).isTrue();
            ByteBuffer dst = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
            f.read("w", dst);
            assertThat(dst.getFloat(12)).isEqualTo(4f);
            Path dat = ((OffloadFolder.DatEntry) f.entry("w")).file();
            truncate(dat, 8);
            assertThatThrownBy(() -> f.read("w", ByteBuffer.allocateDirect(16))).hasMessageContaining(dat.toString());
        }
    }

    @Test
    void anInterruptedReaderNeitherFailsNorClosesTheFileForOthersAndKeepsItsInterrupt() throws IOException {
        try (SafetensorsFile st = SafetensorsFile.open(checkpoint())) {
            Thread.currentThread().interrupt();
            try {
                ByteBuffer b = st.bytes("b").order(ByteOrder.LITTLE_ENDIAN);
                assertThat(b.getFloat(4)).isEqualTo(6f);
                assertThat(Thread.currentThread().isInterrupted()).isTrue();
            } finally {
                Thread.interrupted();
            }
            assertThat(st.bytes("a").order(ByteOrder.LITTLE_ENDIAN).getFloat(0)).isEqualTo(1f);
        }
    }

    @Test
    void theUnsafeOptionMapsInPlace() throws IOException {
        Path file = checkpoint();
        System.setProperty(FileAccess.PROPERTY, "true");
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            assertThat(st.streamsFromFile("a")).isFalse();
            assertThat(st.bytes("a").getFloat(0)).isEqualTo(1f);
        } finally {
            System.clearProperty(FileAccess.PROPERTY);
        }
    }
}
