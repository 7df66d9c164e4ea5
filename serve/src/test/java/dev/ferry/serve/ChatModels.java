package dev.ferry.serve;

import dev.ferry.core.testing.Fixtures;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Test models: tiny-llama (which the PyTorch backend runs) given tiny-qwen3's ChatML chat template. */
final class ChatModels {

    private ChatModels() {
    }

    static Path llamaWithTemplate(Path tmp) {
        try {
            Path dir = Files.createDirectories(tmp.resolve("tiny-llama-chat"));
            try (Stream<Path> files = Files.list(Fixtures.model("tiny-llama"))) {
                for (Path f : files.toList()) {
                    Files.copy(f, dir.resolve(f.getFileName()));
                }
            }
            Files.copy(Fixtures.model("tiny-qwen3").resolve("chat_template.jinja"), dir.resolve("chat_template.jinja"));
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
