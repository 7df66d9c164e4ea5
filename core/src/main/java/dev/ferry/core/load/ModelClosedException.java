package dev.ferry.core.load;

/** A call reached a {@link DispatchedModel} that is closed (or closing); load the model again to use it. */
public final class ModelClosedException extends IllegalStateException {

    public ModelClosedException(String message) {
        super(message);
    }
}
