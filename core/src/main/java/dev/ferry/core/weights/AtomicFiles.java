package dev.ferry.core.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes a file under a temporary name beside it, flushes it, then renames it into place. The temporary file
 * is created new ({@code O_CREAT | O_EXCL | O_NOFOLLOW}): a name planted there beforehand, a symbolic link
 * included, makes the write fail instead of being written through. The rename replaces the final name itself
 * (a link at that name is replaced, its target untouched), so a reader sees the old file or the new one,
 * never a truncated one. New files get the process's default mode (as any file the JVM creates, umask
 * applied), the same for every file Ferry writes.
 */
final class AtomicFiles {

    interface ChannelWriter {
        void write(FileChannel channel) throws IOException;
    }

    private AtomicFiles() {
    }

    /** Writes {@code target} through a fresh, randomly named temporary file beside it. */
    static void write(Path target, ChannelWriter body) {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + target, e);
        }
        for (int attempt = 0; ; attempt++) {
            Path tmp = dir.resolve("." + absolute.getFileName() + "."
                    + Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36) + ".tmp");
            try {
                writeVia(tmp, absolute, body);
                return;
            } catch (UncheckedIOException e) {
                if (!(e.getCause() instanceof FileAlreadyExistsException) || attempt >= 16) {
                    throw e;
                }
            }
        }
    }

    /**
     * Creates {@code tmp} new (never following a link, never truncating an existing file), lets {@code body}
     * fill it, flushes it and renames it over {@code target}; {@code tmp} is removed when anything fails.
     */
    static void writeVia(Path tmp, Path target, ChannelWriter body) {
        boolean created = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                    LinkOption.NOFOLLOW_LINKS)) {
                created = true;
                body.write(ch);
                ch.force(true);
            }
            publish(tmp, target);
            created = false;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + target, e);
        } finally {
            if (created) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // the write already failed; a leftover temporary file never looks complete
                }
            }
        }
    }

    /** Renames {@code tmp} over {@code target} atomically (replacing the name, not following a link there). */
    static void publish(Path tmp, Path target) throws IOException {
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Writes all of {@code src}'s remaining bytes; returns how many. */
    static long writeFully(FileChannel ch, ByteBuffer src) throws IOException {
        long n = 0;
        while (src.hasRemaining()) {
            n += ch.write(src);
        }
        return n;
    }
}
