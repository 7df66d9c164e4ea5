package dev.ferry.cli;

import dev.ferry.core.placement.DeviceMap;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code --device-map FILE.json|JSON|auto}: a map read from a file, given inline in Accelerate's JSON form (as the
 * builder's {@code deviceMap(String)} takes it), or {@code auto} (planned from budgets). {@code file} is null for an
 * inline map.
 */
public record DeviceMapArg(Path file, DeviceMap map) {

    public static final DeviceMapArg AUTO = new DeviceMapArg(null, null);

    public boolean isAuto() {
        return map == null;
    }

    @Override
    public String toString() {
        return isAuto() ? "auto" : file == null ? "(inline JSON)" : file.toString();
    }

    public static final class Converter implements ITypeConverter<DeviceMapArg> {
        @Override
        public DeviceMapArg convert(String value) {
            if (value.equalsIgnoreCase("auto")) {
                return AUTO;
            }
            if (value.strip().startsWith("{")) {
                try {
                    return new DeviceMapArg(null, DeviceMap.parseJson(value));
                } catch (IllegalArgumentException e) {
                    throw new TypeConversionException("inline JSON map: " + e.getMessage());
                }
            }
            Path file = Path.of(value);
            String why = dev.ferry.core.io.RegularFiles.problem(file);
            if (why != null && Files.exists(file)) {
                // a FIFO would block the read forever
                throw new TypeConversionException(file + " " + why + " (pass a JSON device map or 'auto')");
            }
            String json;
            try {
                json = Files.readString(file);
            } catch (NoSuchFileException e) {
                throw new TypeConversionException("no such file: " + file + " (pass a JSON device map file, the map itself as JSON, or 'auto')");
            } catch (IOException e) {
                throw new TypeConversionException("cannot read " + file + ": " + e.getMessage());
            }
            try {
                return new DeviceMapArg(file, DeviceMap.parseJson(json));
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(file + ": " + e.getMessage());
            }
        }
    }
}
