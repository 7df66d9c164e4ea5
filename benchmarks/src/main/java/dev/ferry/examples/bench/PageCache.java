package dev.ferry.examples.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Page-cache control for cold-read benchmarks. Eviction uses GNU {@code dd iflag=nocache count=0}, which
 * asks the kernel to drop one file's cached pages (pages still mapped by a live mapping stay), so other
 * processes' caches are left alone; where that is refused it falls back to {@code /proc/sys/vm/drop_caches}
 * (root only). {@link #residentFraction} reads {@code fincore} to check that eviction worked.
 */
final class PageCache {

    private PageCache() {
    }

    /** Drops the cached pages of {@code files}; unmaps garbage mappings first (they pin pages). */
    static void evict(List<Path> files) {
        // mappings are unmapped by a Cleaner after the GC has found them unreachable: give it time
        for (int i = 0; i < 3; i++) {
            System.gc();
            sleep(100);
        }
        for (Path f : files) {
            if (exec("dd", "if=" + f, "iflag=nocache", "count=0", "status=none") != 0) {
                exec("sh", "-c", "sync; echo 1 > /proc/sys/vm/drop_caches");
            }
        }
    }

    /**
     * Fraction of {@code file}'s 1 MiB pieces whose pages are all in the page cache, through {@code mincore}
     * ({@link MappedByteBuffer#isLoaded()} on a fresh mapping, dropped right after).
     */
    static double residentFraction(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            long step = 1 << 20;
            int loaded = 0;
            int pieces = 0;
            for (long pos = 0; pos < size; pos += step) {
                MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_ONLY, pos, Math.min(step, size - pos));
                loaded += m.isLoaded() ? 1 : 0;
                pieces++;
            }
            return pieces == 0 ? 1 : (double) loaded / pieces;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Reads {@code files} start to end through one reused 16 MiB direct buffer; returns the bytes read. */
    static long sequentialRead(List<Path> files) {
        ByteBuffer buf = BUFFER.get();
        long total = 0;
        for (Path f : files) {
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
                while (true) {
                    buf.clear();
                    int n = ch.read(buf);
                    if (n < 0) {
                        break;
                    }
                    total += n;
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return total;
    }

    /** Reads the byte ranges {@code [offset, offset + length)} of {@code file} in the order given. */
    static long rangeRead(Path file, List<long[]> ranges) {
        ByteBuffer buf = BUFFER.get();
        long total = 0;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            for (long[] r : ranges) {
                long pos = r[0];
                long end = r[0] + r[1];
                while (pos < end) {
                    buf.clear();
                    buf.limit((int) Math.min(buf.capacity(), end - pos));
                    int n = ch.read(buf, pos);
                    if (n < 0) {
                        break;
                    }
                    pos += n;
                    total += n;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return total;
    }

    private static final ThreadLocal<ByteBuffer> BUFFER = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(16 << 20));

    private static int exec(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }
}
