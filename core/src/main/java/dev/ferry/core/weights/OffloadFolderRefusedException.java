package dev.ferry.core.weights;

import java.nio.file.Path;

/**
 * Ferry will not write into a folder: it is not empty, not one Ferry made, and not an offload folder the
 * caller allowed it to overwrite. Nothing in the folder was changed. The message names the folder and what
 * is in it.
 */
public final class OffloadFolderRefusedException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final transient Path folder;

    public OffloadFolderRefusedException(Path folder, String message) {
        super(message);
        this.folder = folder;
    }

    public Path folder() {
        return folder;
    }
}
