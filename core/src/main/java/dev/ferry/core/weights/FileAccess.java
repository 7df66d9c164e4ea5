package dev.ferry.core.weights;

/**
 * How Ferry takes tensor bytes from weight files (safetensors shards, offload {@code .dat} files).
 *
 * <ul>
 *   <li>{@link #READ} (the default): positional reads into memory Ferry owns ({@link FileReads}); streamed blocks go
 *       through reused (page-locked, for a GPU) buffers. A file truncated or replaced while a model runs is a
 *       {@link WeightsFileChangedException} naming it.</li>
 *   <li>{@link #MAP_IN_PLACE_UNSAFE}: zero copy, tensors use the file's memory mapping in place. Saves a copy per
 *       streamed block, but <b>if another process truncates a mapped file while a forward reads it, the JVM dies
 *       (SIGBUS)</b>. Only for files nobody else writes. Chosen by the system property
 *       {@value #PROPERTY}{@code =true} (read when a file is opened).</li>
 * </ul>
 */
public enum FileAccess {
    READ,
    MAP_IN_PLACE_UNSAFE;

    /** The system property that selects {@link #MAP_IN_PLACE_UNSAFE}. */
    public static final String PROPERTY = "ferry.unsafeMapWeightsInPlace";

    /** {@link #MAP_IN_PLACE_UNSAFE} when {@value #PROPERTY} is {@code true}, else {@link #READ}. */
    public static FileAccess current() {
        return Boolean.getBoolean(PROPERTY) ? MAP_IN_PLACE_UNSAFE : READ;
    }
}
