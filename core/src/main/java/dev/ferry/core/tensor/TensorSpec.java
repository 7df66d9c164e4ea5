package dev.ferry.core.tensor;

import java.util.Arrays;

/** Shape and element type of a tensor: everything planning needs, no data. */
public record TensorSpec(long[] shape, DType dtype) {

    public TensorSpec {
        shape = shape.clone();
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
        }
    }

    public static TensorSpec of(DType dtype, long... shape) {
        return new TensorSpec(shape, dtype);
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int i) {
        return shape[i];
    }

    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public long byteSize() {
        return Math.multiplyExact(elementCount(), dtype.byteSize());
    }

    public TensorSpec withDType(DType other) {
        return new TensorSpec(shape, other);
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorSpec s && s.dtype == dtype && Arrays.equals(s.shape, shape);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(shape) + dtype.hashCode();
    }

    @Override
    public String toString() {
        return dtype.torchName() + Arrays.toString(shape);
    }
}
