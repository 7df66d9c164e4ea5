package dev.ferry.cli;

import dev.ferry.core.placement.PlanRequest.Strategy;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** {@code --strategy auto|balanced|balanced_low_0|sequential}. */
final class StrategyConverter implements ITypeConverter<Strategy> {

    @Override
    public Strategy convert(String value) {
        try {
            return Strategy.parse(value);
        } catch (IllegalArgumentException e) {
            throw new TypeConversionException(e.getMessage());
        }
    }
}
