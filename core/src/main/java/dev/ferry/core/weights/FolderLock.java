package dev.ferry.core.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The writers' lock of one offload folder, across processes and threads: an exclusive {@link FileLock} on
 * {@value #NAME} inside the folder (opened without following links and never written to), plus a lock per
 * folder within this JVM, since a file lock belongs to the whole process. Reentrant on one thread. The lock
 * file is never deleted: deleting it would let two processes lock two different files. Only a regular file is
 * ever opened there: a FIFO at that name would block the open forever, so it is refused by name.
 *
 * <p>Where the lock file cannot be opened for writing (a read-only folder or file system), {@link #acquireOrShare}
 * takes a shared lock on it opened for reading instead (or none, when there is no lock file), which waits for a
 * writer in another process to finish; such a lock is {@link #shared()} and lets its holder only read.
 */
final class FolderLock implements AutoCloseable {

    static final String NAME = ".ferry-offload.lock";

    private static final Map<Path, Held> HELD = new ConcurrentHashMap<>();

    private static final class Held {
        final ReentrantLock local = new ReentrantLock();
        FileChannel channel;
        FileLock lock;
        boolean shared;
    }

    private final Held held;
    private boolean released;

    private FolderLock(Held held) {
        this.held = held;
    }

    /** Blocks until this thread holds the folder's lock. {@code folder} must exist and be a real path. */
    static FolderLock acquire(Path folder) {
        FolderLock lock = acquire(folder, false);
        if (lock.shared()) {
            lock.close();
            throw new OffloadFolderRefusedException(folder, "offload folder " + folder + " is held read-only by "
                    + "this process; it cannot be written now");
        }
        return lock;
    }

    /**
     * {@link #acquire}, or, where the folder cannot be written, a {@link #shared()} lock for reading it: a shared
     * lock on the lock file opened for reading, or no file lock when there is no lock file (then no writer can
     * have created one either).
     */
    static FolderLock acquireOrShare(Path folder) {
        return acquire(folder, true);
    }

    private static FolderLock acquire(Path folder, boolean mayShare) {
        Held h = HELD.computeIfAbsent(folder, k -> new Held());
        h.local.lock();
        try {
            if (h.local.getHoldCount() == 1) {
                Path file = folder.resolve(NAME);
                FileStamp stamp = FileStamp.of(file);
                if (stamp != null && !stamp.regular()) {
                    throw new OffloadFolderRefusedException(folder, "offload folder " + folder + " holds " + NAME
                            + ", which is " + stamp.kind() + ", not Ferry's lock file; Ferry does not open it "
                            + "(remove it, or choose another folder)");
                }
                try {
                    h.channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                            LinkOption.NOFOLLOW_LINKS);
                    h.shared = false;
                    h.lock = h.channel.lock();
                } catch (FileSystemException e) {
                    if (!mayShare || !cannotWrite(e)) {
                        throw e;
                    }
                    closeChannel(h);
                    h.shared = true;
                    try {
                        h.channel = FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS);
                        h.lock = h.channel.lock(0, Long.MAX_VALUE, true);
                    } catch (NoSuchFileException none) {
                        h.channel = null; // a read-only folder without a lock file: nobody writes it
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            closeChannel(h);
            h.local.unlock();
            if (e instanceof RuntimeException r) {
                throw r;
            }
            throw new UncheckedIOException("cannot lock offload folder " + folder + " (" + NAME + "): "
                    + IoErrors.reason((IOException) e), (IOException) e);
        }
        return new FolderLock(h);
    }

    /** Permission denied, or a read-only file system: the folder can be read but not written. */
    private static boolean cannotWrite(FileSystemException e) {
        return e instanceof AccessDeniedException
                || (e.getReason() != null && e.getReason().toLowerCase(java.util.Locale.ROOT).contains("read-only"));
    }

    /** Whether this lock only allows reading the folder (it could not be taken for writing). */
    boolean shared() {
        return held.shared;
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
