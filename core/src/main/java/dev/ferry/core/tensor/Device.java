package dev.ferry.core.tensor;

import java.util.Locale;

/**
 * Where a tensor lives or a block executes: an accelerator (CUDA GPU {@code i} for PyTorch, an execution
 * provider instance for ONNX Runtime), the host CPU, or disk. Names follow DJL ({@code gpu0}, {@code cpu});
 * {@link #parse} also takes Accelerate's device-map values ({@code 0}, {@code "cuda:0"}, {@code "cpu"},
 * {@code "disk"}).
 */
public record Device(Kind kind, int index) implements Comparable<Device> {

    public enum Kind { ACCELERATOR, CPU, DISK }

    private static final Device CPU = new Device(Kind.CPU, -1);
    private static final Device DISK = new Device(Kind.DISK, -1);

    public Device {
        if (kind == Kind.ACCELERATOR ? index < 0 : index != -1) {
            throw new IllegalArgumentException("bad device index " + index + " for " + kind);
        }
    }

    public static Device accelerator(int index) {
        return new Device(Kind.ACCELERATOR, index);
    }

    public static Device cpu() {
        return CPU;
    }

    public static Device disk() {
        return DISK;
    }

    public boolean isAccelerator() {
        return kind == Kind.ACCELERATOR;
    }

    /** CPU or disk: as a block's storage it means "offloaded" unless the main device is the CPU. */
    public boolean isOffloadStorage() {
        return kind != Kind.ACCELERATOR;
    }

    /**
     * Parses {@code 0}, {@code gpu0}, {@code gpu(0)}, {@code cuda}, {@code cuda:0}, {@code cpu}, {@code disk}.
     */
    public static Device parse(String text) {
        String s = text.trim().toLowerCase(Locale.ROOT);
        if (s.equals("cpu")) {
            return CPU;
        }
        if (s.equals("disk")) {
            return DISK;
        }
        if (s.equals("cuda") || s.equals("gpu")) {
            return accelerator(0);
        }
        String digits = s;
        if (s.startsWith("cuda:")) {
            digits = s.substring(5);
        } else if (s.startsWith("gpu(") && s.endsWith(")")) {
            digits = s.substring(4, s.length() - 1);
        } else if (s.startsWith("gpu")) {
            digits = s.substring(3);
        }
        try {
            return accelerator(Integer.parseInt(digits));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown device '" + text
                    + "', expected an accelerator index (0, cuda:0, gpu0), 'cpu' or 'disk'");
        }
    }

    /** The value Accelerate writes in a device map: an {@link Integer} index, {@code "cpu"} or {@code "disk"}. */
    public Object accelerateValue() {
        return isAccelerator() ? (Object) index : toString();
    }

    @Override
    public int compareTo(Device o) {
        int c = kind.compareTo(o.kind);
        return c != 0 ? c : Integer.compare(index, o.index);
    }

    @Override
    public String toString() {
        return switch (kind) {
            case ACCELERATOR -> "gpu" + index;
            case CPU -> "cpu";
            case DISK -> "disk";
        };
    }
}
