package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.SparseFormat;
import dev.ferry.core.module.RowLookup;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;

/**
 * {@code torch.nn.Embedding}: rows of {@code weight [num, dim]} picked by int64 ids. A {@link RowLookup}: offloaded,
 * it streams the rows its ids name, not the table.
 */
public class Embedding extends DjlModule implements RowLookup {

    public Embedding(DjlBackend backend, long num, long dim, DType dtype) {
        this("Embedding", backend, num, dim, dtype);
    }

    protected Embedding(String className, DjlBackend backend, long num, long dim, DType dtype) {
        super(className, backend);
        registerParameter("weight", TensorSlot.parameter(TensorSpec.of(dtype, num, dim)));
    }

    /** The weight slot, to tie it to another module (GPT-2's {@code lm_head}). */
    public TensorSlot weightSlot() {
        return tensor("weight");
    }

    /** The rows of {@code ids}, an array of the current scope. */
    protected final NDArray lookup(NDArray ids) {
        NDArray w = weight("weight");
        return w.getNDArrayInternal().embedding(ids, w, SparseFormat.DENSE).singletonOrThrow();
    }

    @Override
    protected Object forward(Object... args) {
        NDArray ids = array(arg(args, 0, "input ids"));
        try (NDScope scope = new NDScope()) {
            return output(lookup(ids));
        }
    }
}
