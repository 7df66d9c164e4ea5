package dev.ferry.core.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a file is, as far as telling "the same bytes as before" goes: size and modification time, plus what no user
 * can set back: the inode's change time ({@code unix:ctime}, which the kernel sets to now on every write, on every
 * {@code utimes} that restores the modification time, on chmod and rename) and the inode number ({@code unix:ino}).
 * A file rewritten in place with the same size and its modification time restored to the nanosecond keeps size,
 * time and inode, but not its change time. Where the file system has no {@code unix} view (Windows), change time
 * and inode are {@link #UNKNOWN} and only size and time are compared; that is said once in the log.
 *
 * @param regular whether it is a regular file (not a link, folder, FIFO or device); links are not followed
 */
record FileStamp(long size, long mtimeNanos, long ctimeNanos, long inode, boolean regular, boolean link) {

    /** A change time or inode the file system does not report. */
    static final long UNKNOWN = Long.MIN_VALUE;

    private static final Logger LOG = LoggerFactory.getLogger(FileStamp.class);
    private static final AtomicBoolean WARNED = new AtomicBoolean();
    private static final String UNIX = "unix:size,lastModifiedTime,ctime,ino,isRegularFile,isSymbolicLink";

    /** The stamp of {@code file} (links not followed), or null when there is no such file. */
    static FileStamp of(Path file) {
        try {
            try {
                Map<String, Object> a = Files.readAttributes(file, UNIX, LinkOption.NOFOLLOW_LINKS);
                return new FileStamp((Long) a.get("size"), nanos((FileTime) a.get("lastModifiedTime")),
                        nanos((FileTime) a.get("ctime")), ((Number) a.get("ino")).longValue(),
                        (Boolean) a.get("isRegularFile"), (Boolean) a.get("isSymbolicLink"));
            } catch (UnsupportedOperationException | IllegalArgumentException | ClassCastException e) {
                if (WARNED.compareAndSet(false, true)) {
                    LOG.warn("this file system reports no inode change time or number: an offload folder's files and "
                            + "checkpoint are recognised by size, modification time and header hash only, so a file "
                            + "rewritten in place with its time set back is not seen ({})", e.toString());
                }
                BasicFileAttributes b = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
                return new FileStamp(b.size(), nanos(b.lastModifiedTime()), UNKNOWN, UNKNOWN, b.isRegularFile(),
                        b.isSymbolicLink());
            }
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the attributes of " + file + ": " + IoErrors.reason(e), e);
        }
    }

    private static long nanos(FileTime t) {
        return t.to(TimeUnit.NANOSECONDS);
    }

    /**
     * Whether {@code now} is this same file unchanged: equal size and time, and equal change time and inode where
     * both are known. A field this stamp lacks (a marker written before they were recorded) but {@code now} has
     * does not match, so such a folder is checked anew rather than trusted.
     */
    boolean sameAs(FileStamp now) {
        return now != null && now.regular == regular && now.size == size && now.mtimeNanos == mtimeNanos
                && now.ctimeNanos == ctimeNanos && now.inode == inode;
    }

    /** What kind of thing it is, for messages: "a regular file", "a symbolic link", "not a regular file". */
    String kind() {
        return link ? "a symbolic link" : regular ? "a regular file" : "not a regular file (a folder, FIFO or device)";
    }
}
