package dev.ferry.cli;

import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.Device;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** {@code --max-memory 0=2GiB,cpu=8GiB,disk=100GiB}: per-device budgets, as Accelerate's {@code max_memory}. */
public record MaxMemoryArg(Map<Device, Long> budgets) {

    public MaxMemoryArg {
        budgets = Collections.unmodifiableMap(new LinkedHashMap<>(budgets));
    }

    public static final class Converter implements ITypeConverter<MaxMemoryArg> {
        @Override
        public MaxMemoryArg convert(String value) {
            Map<Device, Long> out = new LinkedHashMap<>();
            Map<Device, String> spelled = new LinkedHashMap<>();
            for (String part : value.split(",")) {
                String p = part.trim();
                if (p.isEmpty()) {
                    continue;
                }
                int eq = p.indexOf('=');
                if (eq <= 0 || eq == p.length() - 1) {
                    throw new TypeConversionException("'" + p + "' is not DEVICE=SIZE (e.g. 0=2GiB,cpu=8GiB)");
                }
                String key = p.substring(0, eq).trim();
                Device d;
                try {
                    d = Device.parse(key);
                } catch (IllegalArgumentException e) {
                    throw new TypeConversionException(e.getMessage());
                }
                if (out.containsKey(d)) {
                    // Accelerate's max_memory is a dict: one budget per device; keeping the last would hide a typo
                    String first = spelled.get(d);
                    throw new TypeConversionException("device " + d + " has two budgets ("
                            + (first.equals(key) ? key + " given twice" : first + " and " + key + " are the same device")
                            + "); give each device one budget");
                }
                try {
                    out.put(d, SizeStrings.parse(p.substring(eq + 1).trim()));
                } catch (IllegalArgumentException e) {
                    throw new TypeConversionException("budget of " + key + ": " + e.getMessage());
                }
                spelled.put(d, key);
            }
            if (out.isEmpty()) {
                throw new TypeConversionException("no budget given (e.g. 0=2GiB,cpu=8GiB)");
            }
            return new MaxMemoryArg(out);
        }
    }
}
