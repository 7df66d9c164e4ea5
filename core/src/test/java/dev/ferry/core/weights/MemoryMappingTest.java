package dev.ferry.core.weights;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MemoryMappingTest {

    @TempDir
    Path tmp;

    @Test
    void aRefusedMapNamesTheFileTheRangeAndWhatToChange() {
        Path file = tmp.resolve("model-00003-of-00004.safetensors");
        assertThatThrownBy(() -> MemoryMapping.map(new RefusingChannel(), file, 4096, 1L << 33))
                .isInstanceOf(MemoryMapping.MappingFailedException.class)
                .hasMessageContaining("cannot memory-map 8589934592 bytes at 4096 of " + file)
                .hasMessageContaining("Map failed")
                .hasMessageContaining("lower the cpu budget (--max-memory cpu=")
                .hasMessageContaining("vm.max_map_count");
    }

    @Test
    void aMapThatWorksIsLittleEndianAndHoldsTheBytes() throws IOException {
        Path file = Files.write(tmp.resolve("w.bin"), new byte[] {1, 0, 0, 0, 2, 0, 0, 0});
        try (FileChannel ch = FileChannel.open(file)) {
            assertThat(MemoryMapping.map(ch, file, 4, 4).getInt(0)).isEqualTo(2);
        }
    }

    /** A channel whose map fails as the JVM's does when the OS refuses one (ENOMEM). */
    private static final class RefusingChannel extends FileChannel {
        @Override
        public MappedByteBuffer map(MapMode mode, long position, long size) throws IOException {
            throw new IOException("Map failed", new OutOfMemoryError("Map failed"));
        }

        @Override
        public int read(ByteBuffer dst) {
            throw new UnsupportedOperationException();
        }

        @Override
        public long read(ByteBuffer[] dsts, int offset, int length) {
            throw new UnsupportedOperationException();
        }

        @Override
        public int write(ByteBuffer src) {
            throw new UnsupportedOperationException();
        }

        @Override
        public long write(ByteBuffer[] srcs, int offset, int length) {
            throw new UnsupportedOperationException();
        }

        @Override
        public long position() {
            return 0;
        }

        @Override
        public FileChannel position(long newPosition) {
            return this;
        }

        @Override
        public long size() {
            return Long.MAX_VALUE;
        }

        @Override
        public FileChannel truncate(long size) {
            return this;
        }

        @Override
        public void force(boolean metaData) {
        }

        @Override
        public long transferTo(long position, long count, WritableByteChannel target) {
            throw new UnsupportedOperationException();
        }

        @Override
        public long transferFrom(ReadableByteChannel src, long position, long count) {
            throw new UnsupportedOperationException();
        }

        @Override
        public int read(ByteBuffer dst, long position) {
            throw new UnsupportedOperationException();
        }

        @Override
        public int write(ByteBuffer src, long position) {
            throw new UnsupportedOperationException();
        }

        @Override
        public FileLock lock(long position, long size, boolean shared) {
            throw new UnsupportedOperationException();
        }

        @Override
        public FileLock tryLock(long position, long size, boolean shared) {
            throw new UnsupportedOperationException();
        }

        @Override
        protected void implCloseChannel() {
        }
    }
}
