package dev.ferry.pytorch.models;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;

/**
 * A Hugging Face {@code config.json} as the PyTorch model families read it. The reading itself lives in core
 * ({@link dev.ferry.core.config.ModelConfig}), so that backend-neutral generation and the ONNX backend read the same
 * fields the same way; this name stays for the families and existing callers.
 */
public final class ModelConfig extends dev.ferry.core.config.ModelConfig {

    public ModelConfig(JsonNode json) {
        super(json);
    }

    public static ModelConfig read(Path configOrDir) {
        return new ModelConfig(dev.ferry.core.config.ModelConfig.read(configOrDir).json());
    }

    public static ModelConfig parse(String json) {
        return new ModelConfig(dev.ferry.core.config.ModelConfig.parse(json).json());
    }
}
