package dev.ferry.cli;

import dev.ferry.core.quant.QuantizationScheme;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** {@code --quantize int8} / {@code --scheme int8}. */
final class QuantizeSchemeConverter implements ITypeConverter<QuantizationScheme> {

    @Override
    public QuantizationScheme convert(String value) {
        try {
            return QuantizationScheme.parse(value);
        } catch (IllegalArgumentException e) {
            throw new TypeConversionException(e.getMessage());
        }
    }
}
