package dev.ferry.onnx;

import ai.onnxruntime.OnnxJavaType;
import dev.ferry.core.tensor.DType;

/** ONNX {@code TensorProto.DataType} codes with their byte size, core {@link DType} and ORT Java type. */
public enum OnnxDataType {
    FLOAT(1, 4, DType.FLOAT32, OnnxJavaType.FLOAT),
    UINT8(2, 1, DType.UINT8, OnnxJavaType.UINT8),
    INT8(3, 1, DType.INT8, OnnxJavaType.INT8),
    UINT16(4, 2, null, null),
    INT16(5, 2, DType.INT16, OnnxJavaType.INT16),
    INT32(6, 4, DType.INT32, OnnxJavaType.INT32),
    INT64(7, 8, DType.INT64, OnnxJavaType.INT64),
    STRING(8, -1, null, null),
    BOOL(9, 1, DType.BOOL, OnnxJavaType.BOOL),
    FLOAT16(10, 2, DType.FLOAT16, OnnxJavaType.FLOAT16),
    DOUBLE(11, 8, DType.FLOAT64, OnnxJavaType.DOUBLE),
    UINT32(12, 4, null, null),
    UINT64(13, 8, null, null),
    BFLOAT16(16, 2, DType.BFLOAT16, OnnxJavaType.BFLOAT16),
    FLOAT8E4M3FN(17, 1, DType.FLOAT8_E4M3FN, null),
    FLOAT8E5M2(19, 1, DType.FLOAT8_E5M2, null);

    private final int code;
    private final int byteSize;
    private final DType dtype;
    private final OnnxJavaType javaType;

    OnnxDataType(int code, int byteSize, DType dtype, OnnxJavaType javaType) {
        this.code = code;
        this.byteSize = byteSize;
        this.dtype = dtype;
        this.javaType = javaType;
    }

    public int code() {
        return code;
    }

    /** Bytes per element; -1 for strings. */
    public int byteSize() {
        return byteSize;
    }

    /** The core dtype, or {@code null} when the core has none (unsigned 16-64 bit, string). */
    public DType dtype() {
        return dtype;
    }

    /** The ORT Java type for tensors made from bytes, or {@code null} when ORT Java cannot make one. */
    public OnnxJavaType javaType() {
        return javaType;
    }

    public static OnnxDataType of(int code) {
        for (OnnxDataType t : values()) {
            if (t.code == code) {
                return t;
            }
        }
        throw new OnnxModelException("unsupported ONNX data type code " + code);
    }

    public static boolean isKnown(int code) {
        for (OnnxDataType t : values()) {
            if (t.code == code) {
                return true;
            }
        }
        return false;
    }
}
