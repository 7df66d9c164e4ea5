package dev.ferry.core.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/**
 * A weights file (a safetensors shard, an offload {@code .dat}, ONNX external data) changed while Ferry read it: it
 * got shorter than its header or index says, or was replaced. Raised by the positional read that found it, so a
 * forward fails with this error naming the file and the tensor, where reading through a memory mapping of the same
 * file would have killed the JVM (SIGBUS). Load the model again once the file is whole.
 */
public final class WeightsFileChangedException extends UncheckedIOException {

    private final Path file;
    private final String tensor;

    public WeightsFileChangedException(Path file, String tensor, String what) {
        super(new IOException("weights file " + file + " " + what + (tensor == null ? "" : " (reading tensor '"
                + tensor + "')") + "; load the model again once the file is whole"));
        this.file = file;
        this.tensor = tensor;
    }

    /** The file at fault. */
    public Path file() {
        return file;
    }

    /** The tensor being read, or null. */
    public String tensor() {
        return tensor;
    }
}
