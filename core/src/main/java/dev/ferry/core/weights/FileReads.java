package dev.ferry.core.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/**
 * Tensor bytes read from a file into memory Ferry owns, by positional reads ({@code pread}), never through a memory
 * mapping: another process may truncate the file at any moment, and native code (libtorch, ONNX Runtime) reading a
 * mapped page past the new end gets SIGBUS, which kills the JVM. A read that finds the file shorter fails with a
 * {@link WeightsFileChangedException} naming the file and the tensor instead. Large reads are split over the common
 * pool's threads (positional reads of one channel may run concurrently): one thread copies from the page cache at a
 * few GB/s, a page-locked staging buffer bound for a GPU wants all cores. A thread's interrupt is set aside during a
 * read (and kept): NIO would answer it by closing the channel under every other reader.
 */
public final class FileReads {

    /** Below this a read stays on the calling thread. */
    static final int MIN_PARALLEL_BYTES = 8 << 20;

    private FileReads() {
    }

    /**
     * Fills {@code dst} from its position to its limit with the bytes of {@code file} from {@code position}; neither
     * {@code dst}'s position nor limit moves.
     *
     * @throws WeightsFileChangedException when the file ends before the range does
     */
    public static void readFully(FileChannel channel, Path file, String tensor, long position, ByteBuffer dst) {
        // an interrupted thread's NIO read closes the channel for every thread; the interrupt is kept for the caller
        boolean interrupted = Thread.interrupted();
        try {
            read(channel, file, tensor, position, dst);
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static void read(FileChannel channel, Path file, String tensor, long position, ByteBuffer dst) {
        int n = dst.remaining();
        int threads = ForkJoinPool.getCommonPoolParallelism() + 1;
        if (n < MIN_PARALLEL_BYTES || threads < 2) {
            readPart(channel, file, tensor, position, dst.duplicate(), position + n);
            return;
        }
        int parts = Math.min(threads, n / (1 << 20));
        int per = (n / parts + 4095) & ~4095;
        int d0 = dst.position();
        long end = position + n;
        IntStream.range(0, parts).parallel().forEach(i -> {
            int from = i * per;
            int len = Math.min(per, n - from);
            if (len > 0) {
                readPart(channel, file, tensor, position + from, dst.slice(d0 + from, len), end);
            }
        });
    }

    /** A new little-endian, read-only direct buffer holding {@code length} bytes of {@code file} at {@code position}. */
    public static ByteBuffer readOwned(FileChannel channel, Path file, String tensor, long position, int length) {
        ByteBuffer out = ByteBuffer.allocateDirect(length).order(ByteOrder.LITTLE_ENDIAN);
        readFully(channel, file, tensor, position, out);
        return out.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void readPart(FileChannel channel, Path file, String tensor, long position, ByteBuffer part,
                                 long end) {
        long pos = position;
        try {
            while (part.hasRemaining()) {
                int read = channel.read(part, pos);
                if (read < 0) {
                    long size = sizeOf(channel);
                    throw new WeightsFileChangedException(file, tensor, "ends at byte " + size + ", before byte " + end
                            + " that the tensor needs: it got shorter since it was opened");
                }
                pos += read;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + (tensor == null ? "" : " (tensor '" + tensor + "')")
                    + ": " + IoErrors.reason(e), e);
        }
    }

    private static long sizeOf(FileChannel channel) {
        try {
            return channel.size();
        } catch (IOException e) {
            return -1;
        }
    }
}
