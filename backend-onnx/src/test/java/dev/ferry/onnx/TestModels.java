package dev.ferry.onnx;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** Test models: the project's fixtures (testdata/) and all-MiniLM-L6-v2 from the langchain4j jar. */
final class TestModels {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static Path minilm;

    private TestModels() {
    }

    static Path fixtures() {
        return dev.ferry.core.testing.Fixtures.dir();
    }

    static Path fixture(String name, String file) {
        return fixtures().resolve(name).resolve(file);
    }

    static JsonNode json(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** all-MiniLM-L6-v2, copied once out of the langchain4j jar (resource {@code /all-minilm-l6-v2.onnx}). */
    static synchronized Path minilm() {
        if (minilm == null) {
            try (InputStream in = TestModels.class.getResourceAsStream("/all-minilm-l6-v2.onnx")) {
                if (in == null) {
                    throw new IllegalStateException("all-minilm-l6-v2.onnx not on the test classpath");
                }
                Path dir = Path.of("target", "test-models");
                Files.createDirectories(dir);
                Path f = dir.resolve("all-minilm-l6-v2.onnx");
                if (!Files.exists(f) || Files.size(f) != 90387606L) {
                    Files.copy(in, f, StandardCopyOption.REPLACE_EXISTING);
                }
                minilm = f;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return minilm;
    }
}
