package dev.ferry.core.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * The one check before Ferry opens a file a user named (a config, a device map, a checkpoint, an index): it must be
 * a regular file. Opening a FIFO for reading blocks until a writer appears, possibly forever, and a device can
 * stream without end, so anything else is refused by name before it is opened. Links are followed: a model in a
 * Hugging Face cache is links to blobs. Files inside folders Ferry owns (offload folders) are checked without
 * following links, by their own rules.
 */
public final class RegularFiles {

    private RegularFiles() {
    }

    /**
     * Why {@code file} cannot be opened as a regular file, in words ("does not exist", "is a folder", "is not a
     * regular file (a FIFO, socket or device)"), or null when it is one.
     */
    public static String problem(Path file) {
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (java.nio.file.NoSuchFileException e) {
            return "does not exist";
        } catch (IOException e) {
            return "cannot be read (" + e.getMessage() + ")";
        }
        if (a.isRegularFile()) {
            return null;
        }
        return a.isDirectory() ? "is a folder" : "is not a regular file (a FIFO, socket or device); Ferry does not open it";
    }

    /** {@link #problem}, as an {@link IllegalArgumentException} naming {@code what} and the file. */
    public static Path require(Path file, String what) {
        String why = problem(file);
        if (why != null) {
            throw new IllegalArgumentException(what + " " + file + " " + why);
        }
        return file;
    }
}
