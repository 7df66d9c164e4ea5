package dev.ferry.examples.demo;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The small model that ships in the jar: the {@code tiny-llama} fixture of {@code testdata/} (LlamaForCausalLM, 4
 * decoder layers, random float32 weights in 4 safetensors shards, a byte-level {@code tokenizer.json} whose 256 tokens
 * are the 256 bytes), extracted to a folder at run time.
 */
public final class EmbeddedModel {

    public static final String NAME = "tiny-llama";

    /** The files of the model, under {@code /models/tiny-llama/} in the class path. */
    public static final List<String> FILES = List.of("config.json", "generation_config.json",
            "model.safetensors.index.json", "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
            "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
            "tokenizer.json");

    /** A prompt of 8 token ids (the fixture's golden prompt). */
    public static final long[] PROMPT = {1, 17, 42, 99, 3, 250, 7, 128};

    private EmbeddedModel() {
    }

    /** Extracts the model into a new temporary folder, deleted when the JVM exits. */
    public static Path extract() {
        try {
            Path root = Files.createTempDirectory("ferry-demo-");
            root.toFile().deleteOnExit();
            Path dir = Files.createDirectory(root.resolve(NAME));
            dir.toFile().deleteOnExit();
            extractTo(dir);
            for (String f : FILES) {
                dir.resolve(f).toFile().deleteOnExit();
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract the demo model: " + e.getMessage(), e);
        }
    }

    /** Copies the model's files into {@code dir}. */
    public static void extractTo(Path dir) throws IOException {
        for (String f : FILES) {
            String resource = "/models/" + NAME + "/" + f;
            try (InputStream in = EmbeddedModel.class.getResourceAsStream(resource)) {
                if (in == null) {
                    throw new IOException("resource " + resource + " is missing from the class path");
                }
                Files.copy(in, dir.resolve(f));
            }
        }
    }
}
