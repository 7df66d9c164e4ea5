package dev.ferry.core.load;

/**
 * A backend that is on the class path but cannot start, such as the PyTorch backend without a libtorch native
 * library; the message names what to add.
 */
public final class BackendUnavailableException extends IllegalStateException {

    public BackendUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
