package dev.ferry.pytorch.nn;

import dev.ferry.pytorch.DjlBackend;

/** {@code torch.nn.Dropout} in inference: the identity (returns its argument itself). */
public class Dropout extends DjlModule {

    private final double p;

    public Dropout(DjlBackend backend, double p) {
        super("Dropout", backend);
        this.p = p;
    }

    public double p() {
        return p;
    }

    @Override
    protected Object forward(Object... args) {
        return arg(args, 0, "input");
    }
}
