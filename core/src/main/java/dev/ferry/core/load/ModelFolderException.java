package dev.ferry.core.load;

import java.nio.file.Path;

/**
 * A model folder (or file) Ferry cannot load, found before any weight is read: a GGUF file, PyTorch pickles without
 * safetensors, a download without its config.json or shards. The message says what was found and what to do.
 */
public final class ModelFolderException extends IllegalArgumentException {

    private final transient Path path;

    public ModelFolderException(Path path, String message) {
        super(message);
        this.path = path;
    }

    /** The folder or file at fault. */
    public Path path() {
        return path;
    }
}
