package dev.ferry.core.module;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.core.tensor.TensorSpec;
import java.util.Objects;

/**
 * A parameter or buffer: a declared shape and dtype, and the tensor currently materialised for it (or none,
 * the equivalent of PyTorch's {@code meta} device: planned but not loaded, or offloaded and released).
 * Tied parameters are one slot registered in several modules, so they are loaded, moved and freed once.
 * The slot owns its value: replacing or clearing it closes the previous tensor.
 */
public final class TensorSlot {

    public enum Kind { PARAMETER, BUFFER }

    private final Kind kind;
    private final boolean persistent;
    private final TensorSpec spec;
    private Tensor value;

    public TensorSlot(Kind kind, TensorSpec spec, boolean persistent) {
        this.kind = Objects.requireNonNull(kind);
        this.spec = Objects.requireNonNull(spec);
        this.persistent = persistent;
    }

    public static TensorSlot parameter(TensorSpec spec) {
        return new TensorSlot(Kind.PARAMETER, spec, true);
    }

    public static TensorSlot buffer(TensorSpec spec, boolean persistent) {
        return new TensorSlot(Kind.BUFFER, spec, persistent);
    }

    public Kind kind() {
        return kind;
    }

    public boolean isParameter() {
        return kind == Kind.PARAMETER;
    }

    /** Whether a buffer is part of the state dict (parameters always are). */
    public boolean isPersistent() {
        return persistent;
    }

    public TensorSpec spec() {
        return spec;
    }

    public long byteSize() {
        return spec.byteSize();
    }

    /** The materialised tensor, or {@code null} when the slot is on "meta". */
    public Tensor value() {
        return value;
    }

    public boolean isMaterialised() {
        return value != null;
    }

    /** Device of the current value, or {@code null} on meta. */
    public Device device() {
        return value == null ? null : value.device();
    }

    /**
     * Installs {@code tensor} (owned by the slot from now on), closing the previous value unless it is the
     * same object. The shape and dtype must match the declaration exactly.
     */
    public void set(Tensor tensor) {
        if (tensor != null && !tensor.spec().equals(spec)) {
            throw new IllegalArgumentException("tensor " + tensor.spec() + " does not match the declared " + spec);
        }
        Tensor previous = value;
        value = tensor;
        if (previous != null && previous != tensor) {
            previous.close();
        }
    }

    /**
     * Installs (owned by the slot) some rows of the declared table for one forward of an offloaded lookup: the rows
     * its ids name, renumbered ({@link RowLookup}). The dtype and every dimension but the first must match the
     * declaration, and there are at most as many rows.
     */
    public void setRows(Tensor rows) {
        TensorSpec got = rows.spec();
        boolean fits = got.dtype() == spec.dtype() && got.rank() == spec.rank() && spec.rank() >= 1
                && got.dim(0) <= spec.dim(0);
        for (int i = 1; fits && i < spec.rank(); i++) {
            fits = got.dim(i) == spec.dim(i);
        }
        if (!fits) {
            throw new IllegalArgumentException("rows " + got + " are not rows of the declared " + spec);
        }
        Tensor previous = value;
        value = rows;
        if (previous != null && previous != rows) {
            previous.close();
        }
    }

    /** Hands the value back to the caller without closing it; the slot is on meta afterwards. */
    public Tensor take() {
        Tensor t = value;
        value = null;
        return t;
    }

    /** Frees the value; the slot is on meta afterwards. */
    public void release() {
        set(null);
    }

    /** Moves the value to {@code device} in place (no-op on meta or when already there). */
    public void moveTo(Device device) {
        if (value != null && !device.equals(value.device())) {
            set(value.to(device));
        }
    }

    @Override
    public String toString() {
        return kind.name().toLowerCase() + " " + spec + (value == null ? " on meta" : " on " + value.device());
    }
}
