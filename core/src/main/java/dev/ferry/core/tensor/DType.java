package dev.ferry.core.tensor;

import java.util.Locale;

/**
 * Element types of tensors, with the names used by safetensors headers ({@code F32}), by PyTorch
 * ({@code float32}, as in {@code module_tree.json} and Accelerate's offload index) and their byte size.
 */
public enum DType {
    FLOAT64("F64", "float64", 8),
    FLOAT32("F32", "float32", 4),
    FLOAT16("F16", "float16", 2),
    BFLOAT16("BF16", "bfloat16", 2),
    FLOAT8_E4M3FN("F8_E4M3", "float8_e4m3fn", 1),
    FLOAT8_E5M2("F8_E5M2", "float8_e5m2", 1),
    INT64("I64", "int64", 8),
    INT32("I32", "int32", 4),
    INT16("I16", "int16", 2),
    INT8("I8", "int8", 1),
    UINT8("U8", "uint8", 1),
    BOOL("BOOL", "bool", 1);

    private final String safetensorsName;
    private final String torchName;
    private final int byteSize;

    DType(String safetensorsName, String torchName, int byteSize) {
        this.safetensorsName = safetensorsName;
        this.torchName = torchName;
        this.byteSize = byteSize;
    }

    /** Name in a safetensors header, e.g. {@code BF16}. */
    public String safetensorsName() {
        return safetensorsName;
    }

    /** PyTorch name without the {@code torch.} prefix, e.g. {@code bfloat16}. */
    public String torchName() {
        return torchName;
    }

    public int byteSize() {
        return byteSize;
    }

    public boolean isFloatingPoint() {
        return this == FLOAT64 || this == FLOAT32 || this == FLOAT16 || this == BFLOAT16
                || this == FLOAT8_E4M3FN || this == FLOAT8_E5M2;
    }

    /** The dtype of a safetensors header entry; the message names the accepted spellings. */
    public static DType fromSafetensors(String name) {
        for (DType t : values()) {
            if (t.safetensorsName.equals(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown safetensors dtype '" + name + "', expected one of "
                + java.util.Arrays.stream(values()).map(DType::safetensorsName).toList());
    }

    /**
     * Parses a PyTorch dtype name, with or without {@code torch.}, and the usual aliases
     * ({@code float}, {@code half}, {@code long}, {@code int}, {@code fp16}, {@code bf16}, ...).
     */
    public static DType fromTorch(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        if (n.startsWith("torch.")) {
            n = n.substring("torch.".length());
        }
        switch (n) {
            case "float": case "fp32": return FLOAT32;
            case "half": case "fp16": return FLOAT16;
            case "bf16": return BFLOAT16;
            case "double": return FLOAT64;
            case "long": return INT64;
            case "int": return INT32;
            case "short": return INT16;
            default: break;
        }
        for (DType t : values()) {
            if (t.torchName.equals(n)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown dtype '" + name + "', expected a PyTorch dtype such as "
                + "float32, float16, bfloat16, int64, int32, int8, uint8 or bool");
    }
}
