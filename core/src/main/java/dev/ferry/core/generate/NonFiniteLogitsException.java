package dev.ferry.core.generate;

/**
 * A forward gave logits holding NaN or infinity, so no token can be chosen from them: generation stops here instead
 * of returning tokens picked from garbage. Usually a config number (an epsilon, {@code rope_theta}), a weight file
 * or a dtype too narrow for the model's activations.
 */
public final class NonFiniteLogitsException extends IllegalStateException {

    private final int step;
    private final int row;

    public NonFiniteLogitsException(String message, int step, int row) {
        super(message);
        this.step = step;
        this.row = row;
    }

    /** The new token being chosen when it happened (0: the first). */
    public int step() {
        return step;
    }

    /** The batch row whose logits were bad. */
    public int row() {
        return row;
    }
}
