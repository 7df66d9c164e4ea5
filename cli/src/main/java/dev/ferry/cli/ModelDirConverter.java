package dev.ferry.cli;

import dev.ferry.core.load.ModelFolder;
import dev.ferry.core.load.ModelFolderException;
import java.nio.file.Path;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code --model DIR}: a folder holding {@code config.json} (Hugging Face checkpoint) or {@code model.onnx}, checked
 * as the builder checks it ({@link ModelFolder}): a GGUF file or a download without config.json is named here.
 */
public final class ModelDirConverter implements ITypeConverter<Path> {

    @Override
    public Path convert(String value) {
        Path dir = Path.of(value);
        try {
            ModelFolder.inspect(dir);
        } catch (ModelFolderException e) {
            throw new TypeConversionException(e.getMessage());
        }
        return dir;
    }

    /** Before a command reads weights: the files {@code backend} reads are there (exit 2 naming what is not). */
    static void requireWeights(Path dir, Backends.Name backend) {
        try {
            ModelFolder.inspect(dir).requireWeightsFor(backend.name());
        } catch (ModelFolderException e) {
            throw new UsageException("--model: " + e.getMessage(), e);
        }
    }
}
