package dev.ferry.pytorch;

import ai.djl.ndarray.types.DataType;
import dev.ferry.core.tensor.DType;

/**
 * Mapping between Ferry's {@link DType} and DJL's {@link DataType}, and the guard against the element types
 * that make DJL's PyTorch engine abort the whole JVM (bfloat16, int16, unsigned wider than 8 bits) instead
 * of throwing: no such array is ever created.
 */
public final class DjlDTypes {

    private DjlDTypes() {
    }

    /**
     * The dtype a tensor stored as {@code stored} has once it is on a DJL device: bfloat16 becomes float32
     * (converted in Java before any byte reaches the engine); every other type DJL can hold stays. int16 and
     * float8 are rejected with an exception (DJL aborts the JVM on int16 and has no float8).
     */
    public static DType residentDType(DType stored) {
        return switch (stored) {
            case BFLOAT16 -> DType.FLOAT32;
            case INT16, FLOAT8_E4M3FN, FLOAT8_E5M2 -> throw unsupported(stored);
            default -> stored;
        };
    }

    /** The DJL type of a resident dtype; an error (never a native abort) for types DJL cannot hold. */
    public static DataType toDjl(DType t) {
        return switch (t) {
            case FLOAT64 -> DataType.FLOAT64;
            case FLOAT32 -> DataType.FLOAT32;
            case FLOAT16 -> DataType.FLOAT16;
            case INT64 -> DataType.INT64;
            case INT32 -> DataType.INT32;
            case INT8 -> DataType.INT8;
            case UINT8 -> DataType.UINT8;
            case BOOL -> DataType.BOOLEAN;
            default -> throw unsupported(t);
        };
    }

    public static DType fromDjl(DataType t) {
        return switch (t) {
            case FLOAT64 -> DType.FLOAT64;
            case FLOAT32 -> DType.FLOAT32;
            case FLOAT16 -> DType.FLOAT16;
            case INT64 -> DType.INT64;
            case INT32 -> DType.INT32;
            case INT8 -> DType.INT8;
            case UINT8 -> DType.UINT8;
            case BOOLEAN -> DType.BOOL;
            default -> throw new IllegalArgumentException("DJL array of type " + t + " has no Ferry dtype");
        };
    }

    private static IllegalArgumentException unsupported(DType t) {
        return new IllegalArgumentException("dtype " + t.torchName() + " is not supported by the DJL PyTorch "
                + "engine (it aborts the JVM on bfloat16/int16/unsigned arrays and has no float8); bfloat16 is "
                + "converted to float32 on load, other types must be converted before they reach this backend");
    }
}
