package dev.ferry.core.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The writers' lock of one offload folder, across processes and threads: an exclusive {@link FileLock} on
 * {@value #NAME} inside the folder (opened without following links and never written to), plus a lock per
 * folder within this JVM, since a file lock belongs to the whole process. Reentrant on one thread. The lock
 * file is never deleted: deleting it would let two processes lock two different files.
 */
final class FolderLock implements AutoCloseable {

    static final String NAME = ".ferry-offload.lock";

    private static final Map<Path, Held> HELD = new ConcurrentHashMap<>();

    private static final class Held {
        final ReentrantLock local = new ReentrantLock();
        FileChannel channel;
        FileLock lock;
    }

    private final Held held;
    private boolean released;

    private FolderLock(Held held) {
        this.held = held;
    }

    /** Blocks until this thread holds the folder's lock. {@code folder} must exist and be a real path. */
    static FolderLock acquire(Path folder) {
        Held h = HELD.computeIfAbsent(folder, k -> new Held());
        h.local.lock();
        try {
            if (h.local.getHoldCount() == 1) {
                h.channel = FileChannel.open(folder.resolve(NAME), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                        LinkOption.NOFOLLOW_LINKS);
                h.lock = h.channel.lock();
            }
        } catch (IOException e) {
            closeChannel(h);
            h.local.unlock();
            throw new UncheckedIOException("cannot lock offload folder " + folder + " (" + NAME + ")", e);
        }
        return new FolderLock(h);
    }

    @Override
    public void close() {
        if (released) {
            return;
        }
        released = true;
        if (held.local.getHoldCount() == 1) {
            closeChannel(held);
        }
        held.local.unlock();
    }

    private static void closeChannel(Held h) {
        try {
            if (h.lock != null) {
                h.lock.release();
            }
            if (h.channel != null) {
                h.channel.close();
            }
        } catch (IOException ignored) {
            // closing the channel releases the lock in any case
        } finally {
            h.lock = null;
            h.channel = null;
        }
    }
}
