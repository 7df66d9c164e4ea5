package dev.ferry.cli;

/**
 * Bad usage found while running (a device map that names modules the model lacks, a prompt without a
 * tokenizer): the command exits with code 2 and this one-line message, which names the option or file.
 */
public final class UsageException extends RuntimeException {

    public UsageException(String message) {
        super(message);
    }

    public UsageException(String message, Throwable cause) {
        super(message, cause);
    }
}
