package dev.ferry.examples.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** {@code --model DIR}: a folder holding {@code config.json} (Hugging Face checkpoint) or {@code model.onnx}. */
final class ModelDirConverter implements ITypeConverter<Path> {

    @Override
    public Path convert(String value) {
        Path dir = Path.of(value);
        if (!Files.exists(dir)) {
            throw new TypeConversionException("no such folder: " + dir);
        }
        if (!Files.isDirectory(dir)) {
            throw new TypeConversionException(dir + " is not a folder (pass the model's folder)");
        }
        if (!Files.isRegularFile(dir.resolve("config.json")) && !Files.isRegularFile(dir.resolve("model.onnx"))) {
            throw new TypeConversionException(dir + " holds neither config.json nor model.onnx");
        }
        return dir;
    }
}
