package dev.ferry.cli;

import dev.ferry.core.tensor.DType;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** {@code --dtype float16|bfloat16|float32} (PyTorch names and their usual aliases). */
final class DTypeConverter implements ITypeConverter<DType> {

    @Override
    public DType convert(String value) {
        DType t;
        try {
            t = DType.fromTorch(value);
        } catch (IllegalArgumentException e) {
            throw new TypeConversionException(e.getMessage());
        }
        if (!t.isFloatingPoint()) {
            throw new TypeConversionException("'" + value + "' is not a floating-point dtype (float16, bfloat16, float32)");
        }
        return t;
    }
}
