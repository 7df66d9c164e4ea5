package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;

/**
 * Base of the layer library. Conventions every layer follows, so that hooks can move inputs and load or
 * release weights around any forward:
 * <ul>
 *   <li>weights are read from their {@link TensorSlot}s at call time, never cached;</li>
 *   <li>tensor arguments and outputs are {@link DjlTensor}s; arguments stay owned by the caller, the output is
 *       a new tensor owned by the caller;</li>
 *   <li>a forward runs inside an {@link NDScope} so every temporary is freed when it returns; children's
 *       outputs are handed to that scope with {@link #adopt}.</li>
 * </ul>
 */
public abstract class DjlModule extends Module {

    protected final DjlBackend backend;

    protected DjlModule(String className, DjlBackend backend) {
        super(className);
        this.backend = backend;
    }

    /** The current value of this module's tensor {@code localName}; a clear error when it is on meta. */
    protected final NDArray weight(String localName) {
        TensorSlot slot = tensor(localName);
        Tensor t = slot.value();
        if (t == null) {
            String full = name().isEmpty() ? localName : name() + "." + localName;
            throw new IllegalStateException("tensor '" + full + "' " + slot.spec()
                    + " is not loaded (on meta): load the weights or dispatch the model before calling forward");
        }
        return array(t);
    }

    /** The current value of an optional tensor, {@code null} when this module has no such slot. */
    protected final NDArray optionalWeight(String localName) {
        return ownTensors().containsKey(localName) ? weight(localName) : null;
    }

    /** The array of a tensor argument (still owned by the caller). */
    public static NDArray array(Object tensor) {
        if (tensor instanceof DjlTensor t) {
            return t.array();
        }
        throw new IllegalArgumentException("expected a DjlTensor, got "
                + (tensor == null ? "null" : tensor.getClass().getName()));
    }

    /**
     * Takes ownership of a child's output for the current scope: its array is freed when the scope closes
     * (unless {@link #keep} hands it on). When the child returned one of {@code notOwned} (an identity such as
     * Dropout returning its argument), nothing changes hands.
     */
    protected static DjlTensor adopt(Object childOutput, Object... notOwned) {
        if (!(childOutput instanceof DjlTensor t)) {
            throw new IllegalArgumentException("expected a DjlTensor output, got "
                    + (childOutput == null ? "null" : childOutput.getClass().getName()));
        }
        for (Object o : notOwned) {
            if (o == childOutput) {
                return t;
            }
        }
        NDScope.register(t.array());
        return t;
    }

    /** A temporary of the current scope as a tensor argument for a child (the scope still frees it). */
    protected final DjlTensor scoped(NDArray temporary) {
        return backend.scoped(temporary);
    }

    /** Hands a tensor of the current scope (a temporary or an adopted child output) to the caller. */
    protected static DjlTensor keep(DjlTensor t) {
        NDScope.unregister(t.array());
        return t;
    }

    /** Wraps a result computed in the current scope as the caller-owned output. */
    protected final DjlTensor output(NDArray result) {
        return backend.wrap(result);
    }

    /** The tensor argument {@code i}, checked. */
    /**
     * Position ids {@code past .. past+seq-1} for each of {@code batch} rows, as a scoped temporary on the ids'
     * device: what both decoder stacks feed their position embeddings.
     */
    protected final DjlTensor positionIds(NDArray ids, int past) {
        long batch = ids.getShape().get(0);
        int seq = (int) ids.getShape().get(1);
        long[] pos = new long[(int) batch * seq];
        for (int i = 0; i < pos.length; i++) {
            pos[i] = past + (i % seq);
        }
        return scoped(ids.getManager().create(pos, new ai.djl.ndarray.types.Shape(batch, seq)));
    }

    protected static Object arg(Object[] args, int i, String what) {
        if (args.length <= i) {
            throw new IllegalArgumentException("missing argument " + i + " (" + what + ")");
        }
        return args[i];
    }
}
