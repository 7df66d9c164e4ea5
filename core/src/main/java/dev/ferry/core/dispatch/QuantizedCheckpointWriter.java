package dev.ferry.core.dispatch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.module.Module;
import dev.ferry.core.quant.QuantizationConfig;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.quant.QuantizedLinears;
import dev.ferry.core.weights.SafetensorsWriter;
import dev.ferry.core.weights.WeightsStore;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes a quantized checkpoint ({@code ferry quantize}): {@code model.safetensors} with every tensor of the model
 * under its state-dict name (quantized weights as int8 {@code X.weight} plus float32 {@code X.weight_scale}
 * {@code [out, 1]}, all others as the source stores them), {@code config.json} with a {@link QuantizationConfig}
 * entry, and the tokenizer, chat template and generation files copied. Loading the folder builds the quantized model
 * from config.json and reads the int8 bytes as they are: nothing is quantized again.
 *
 * <p>It writes only into a folder that does not exist or is empty, and never replaces a file: an existing folder with
 * anything in it is refused, untouched. If writing fails, the files it wrote (and the folder, if it made it) are
 * removed; nothing else is.
 */
public final class QuantizedCheckpointWriter {

    private static final Logger LOG = LoggerFactory.getLogger(QuantizedCheckpointWriter.class);

    /** The small files of a model folder that travel with the weights, when present. */
    static final List<String> COMPANIONS = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "added_tokens.json", "tokenizer.model", "vocab.json", "merges.txt",
            "generation_config.json", "chat_template.jinja", "chat_template.json");

    static final String WEIGHTS = "model.safetensors";
    static final String CONFIG = "config.json";

    private QuantizedCheckpointWriter() {
    }

    /** What was written. */
    public record Summary(Path outDir, int quantizedWeights, long sourceBytes, long writtenBytes, List<String> files) {
    }

    /**
     * Writes the quantized checkpoint of the model {@code root} (built on meta and quantized by the backend:
     * {@link QuantizedLinears#isQuantized} modules) from {@code checkpoint} (the source folder's weights under the
     * tree's names) into {@code outDir}.
     *
     * @param modelDir the source folder: its config.json and companion files are read from here
     * @throws IllegalArgumentException when {@code outDir} exists and is not an empty folder, when the source is
     *                                  already quantized, or naming a tensor the model needs that the checkpoint
     *                                  lacks or stores with another shape
     */
    public static Summary write(Module root, WeightsStore checkpoint, Path modelDir, Path outDir,
                                QuantizationScheme scheme) {
        refuseUnlessEmpty(outDir);
        ObjectNode config = readConfig(modelDir);
        if (config.has(QuantizationConfig.KEY)) {
            throw new IllegalArgumentException(modelDir.resolve(CONFIG) + " already has a " + QuantizationConfig.KEY
                    + " (" + config.get(QuantizationConfig.KEY) + "): quantize the unquantized checkpoint instead");
        }
        WeightsStore named = CheckpointNames.view(root, checkpoint);
        WeightsStore view = QuantizingStore.view(root, named);
        if (!(view instanceof QuantizingStore quantizing)) {
            throw new IllegalArgumentException("the model " + root.className() + " has no Linear weight the "
                    + scheme + " rule quantizes (" + QuantizedLinears.class.getSimpleName() + "), or "
                    + modelDir + " stores none of them as floats");
        }
        CheckpointDispatcher.Match match = CheckpointDispatcher.match(root, view); // names missing/mismatched tensors
        if (!match.unexpectedKeys().isEmpty()) {
            LOG.warn("{}: tensors the model does not use are copied as they are: {}", modelDir, match.unexpectedKeys());
        }
        List<String> ignore = new ArrayList<>();
        root.visit(m -> {
            if (m.className().equals(QuantizedLinears.LINEAR) && !QuantizedLinears.isQuantized(m)) {
                ignore.add(m.name());
            }
        });
        config.set(QuantizationConfig.KEY, QuantizationConfig.entry(scheme, ignore));

        boolean made = !Files.exists(outDir, LinkOption.NOFOLLOW_LINKS);
        List<Path> written = new ArrayList<>();
        try {
            Files.createDirectories(outDir);
            SafetensorsWriter w = new SafetensorsWriter().metadata("quantization", "ferry " + scheme.id());
            long source = 0;
            long out = 0;
            for (String key : view.keys()) {
                w.addFrom(view, key);
                out += view.spec(key).byteSize();
                if (named.contains(key)) {
                    source += named.spec(key).byteSize();
                }
            }
            // each file joins the clean-up list only once written: a name someone else took meanwhile is never removed
            Path weights = outDir.resolve(WEIGHTS);
            w.write(weights);
            written.add(weights);
            Path cfg = outDir.resolve(CONFIG);
            Files.write(cfg, new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(config)
                    .getBytes(StandardCharsets.UTF_8), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            written.add(cfg);
            List<String> files = new ArrayList<>(List.of(WEIGHTS, CONFIG));
            for (String name : COMPANIONS) {
                Path src = modelDir.resolve(name);
                if (Files.isSymbolicLink(src)) {
                    LOG.warn("{} is a symbolic link: not copied (Ferry reads only inside the folders it is given)", src);
                } else if (Files.isRegularFile(src, LinkOption.NOFOLLOW_LINKS)) {
                    Path dst = outDir.resolve(name);
                    Files.copy(src, dst); // fails rather than replace: the folder was empty
                    written.add(dst);
                    files.add(name);
                }
            }
            LOG.info("wrote {}: {} weights quantized to {}, {} bytes of tensors (from {})", outDir,
                    quantizing.quantizedWeights().size(), scheme, out, source);
            return new Summary(outDir, quantizing.quantizedWeights().size(), source, out, List.copyOf(files));
        } catch (IOException | RuntimeException e) {
            for (Path p : written) {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            if (made) {
                try {
                    Files.deleteIfExists(outDir); // only when empty: nothing but our own files was ever in it
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            if (e instanceof IOException io) {
                throw new UncheckedIOException("cannot write the quantized checkpoint into " + outDir + ": "
                        + io.getMessage(), io);
            }
            throw (RuntimeException) e;
        }
    }

    /** An output folder must be new or empty: anything else is refused before a byte is written. */
    static void refuseUnlessEmpty(Path outDir) {
        if (!Files.exists(outDir, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        if (Files.isSymbolicLink(outDir) || !Files.isDirectory(outDir, LinkOption.NOFOLLOW_LINKS)) {
            throw new IllegalArgumentException("output " + outDir + " exists and is not a folder; give a new or empty "
                    + "folder (Ferry never overwrites what it did not write)");
        }
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(outDir)) {
            List<String> names = new ArrayList<>();
            for (Path p : entries) {
                if (names.size() < 5) {
                    names.add(p.getFileName().toString());
                }
            }
            if (!names.isEmpty()) {
                throw new IllegalArgumentException("output folder " + outDir + " is not empty (it holds "
                        + String.join(", ", names) + "): give a new or empty folder; Ferry never overwrites or "
                        + "deletes what it did not write");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + outDir, e);
        }
    }

    private static ObjectNode readConfig(Path modelDir) {
        Path file = modelDir.resolve(CONFIG);
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(modelDir + " has no config.json");
        }
        try {
            JsonNode j = new ObjectMapper().readTree(file.toFile());
            if (!(j instanceof ObjectNode o)) {
                throw new IllegalArgumentException(file + " is not a JSON object");
            }
            return o;
        } catch (IOException e) {
            throw new IllegalArgumentException(file + " is not valid JSON: " + e.getMessage(), e);
        }
    }
}
