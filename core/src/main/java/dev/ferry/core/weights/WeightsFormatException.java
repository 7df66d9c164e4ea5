package dev.ferry.core.weights;

import java.nio.file.Path;

/**
 * A weights file or folder that does not hold what its format promises: a corrupt safetensors header, a
 * shard index naming a missing file, an offload folder that does not match the model. The message names
 * the file, the tensor (when one is involved) and what was expected.
 */
public class WeightsFormatException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final String tensor;

    public WeightsFormatException(Path file, String tensor, String problem) {
        this(file, tensor, problem, null);
    }

    public WeightsFormatException(Path file, String tensor, String problem, Throwable cause) {
        super(describe(file, tensor, problem), cause);
        this.file = file;
        this.tensor = tensor;
    }

    /** The file or folder at fault; may be null when the problem is not tied to one file. */
    public Path file() {
        return file;
    }

    /** The tensor at fault, or null when the problem is with the file as a whole. */
    public String tensor() {
        return tensor;
    }

    private static String describe(Path file, String tensor, String problem) {
        StringBuilder sb = new StringBuilder();
        if (file != null) {
            sb.append(file).append(": ");
        }
        if (tensor != null) {
            sb.append("tensor '").append(tensor).append("': ");
        }
        return sb.append(problem).toString();
    }
}
