package dev.ferry.core.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;

/**
 * Read-only memory maps of weight files, the one place a refused map is explained: the JVM's bare
 * "Map failed" becomes a {@link MappingFailedException} naming the file, the range and what to change.
 */
public final class MemoryMapping {

    private MemoryMapping() {
    }

    /** Maps {@code length} bytes at {@code offset} of {@code file} (open as {@code channel}), little-endian. */
    public static ByteBuffer map(FileChannel channel, Path file, long offset, long length) {
        return mapRaw(channel, file, offset, length).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Maps {@code length} bytes at {@code offset} of {@code file}, in the buffer's default (big-endian) order. */
    public static MappedByteBuffer mapRaw(FileChannel channel, Path file, long offset, long length) {
        try {
            return channel.map(FileChannel.MapMode.READ_ONLY, offset, length);
        } catch (IOException e) {
            throw new MappingFailedException(file, offset, length, e);
        }
    }

    /** A memory map the operating system refused. */
    public static final class MappingFailedException extends UncheckedIOException {

        MappingFailedException(Path file, long offset, long length, IOException cause) {
            super("cannot memory-map " + length + " bytes at " + offset + " of " + file + " ("
                    + cause.getMessage() + (cause.getCause() == null ? "" : ": " + cause.getCause().getMessage())
                    + "). Ferry reads weights in place through memory maps, and the operating system refused one: "
                    + "lower the cpu budget (--max-memory cpu=..., maxMemory) to what this machine has so that "
                    + "fewer blocks are held in memory, raise the process's limits (ulimit -v unlimited; the map "
                    + "count, sysctl vm.max_map_count=262144), or free memory", cause);
        }
    }
}
