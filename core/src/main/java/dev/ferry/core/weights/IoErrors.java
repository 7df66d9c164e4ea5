package dev.ferry.core.weights;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/**
 * What an I/O failure was, in words. Java's file exceptions often carry only the path as their message (a
 * {@link NoSuchFileException}'s message is the file name), so "cannot create X" followed by its cause said nothing
 * about why.
 */
public final class IoErrors {

    private IoErrors() {
    }

    /** {@code no such file or directory}, {@code permission denied}, the OS's reason, or the message. */
    public static String reason(IOException e) {
        String what;
        if (e instanceof NoSuchFileException) {
            what = "no such file or directory";
        } else if (e instanceof AccessDeniedException) {
            what = "permission denied";
        } else if (e instanceof FileAlreadyExistsException) {
            what = "a file of that name already exists";
        } else if (e instanceof NotDirectoryException) {
            what = "not a directory";
        } else if (e instanceof DirectoryNotEmptyException) {
            what = "directory not empty";
        } else if (e instanceof FileSystemException f && f.getReason() != null) {
            what = f.getReason();
        } else {
            return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
        }
        if (e instanceof FileSystemException f && f.getFile() != null) {
            what += " (" + f.getFile() + (f.getOtherFile() != null ? ", " + f.getOtherFile() : "") + ")";
        }
        return what;
    }
}
