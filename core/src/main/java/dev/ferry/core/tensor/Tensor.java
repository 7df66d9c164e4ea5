package dev.ferry.core.tensor;

import java.nio.ByteBuffer;

/**
 * A backend's tensor as the core sees it. The core never computes with tensors; it only asks where they
 * are, moves them and frees them. Every tensor has exactly one owner, which closes it.
 */
public interface Tensor extends AutoCloseable {

    TensorSpec spec();

    Device device();

    /**
     * The same values on {@code device}. Returns {@code this} when the tensor is already there; otherwise a
     * new tensor owned by the caller (the receiver keeps its owner).
     */
    Tensor to(Device device);

    /** A little-endian copy of the data in host memory, e.g. to write it to an offload store. */
    ByteBuffer toBytes();

    /** Frees native memory; idempotent. */
    @Override
    void close();
}
