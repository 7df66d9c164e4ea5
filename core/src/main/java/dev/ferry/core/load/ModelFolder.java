package dev.ferry.core.load;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * What a model folder holds, read from its file names and small JSON files only (never a weight), so that the
 * checkpoints people have get a clear answer before anything loads: GGUF files, {@code pytorch_model.bin} without
 * safetensors, downloads missing {@code config.json} or shards. The builder and the command line ask this class
 * alike.
 *
 * @param dir         the folder
 * @param config      whether {@code config.json} is there (what the PyTorch backend builds the model from)
 * @param safetensors whether {@code model.safetensors} or {@code model.safetensors.index.json} is there
 * @param onnx        whether {@code model.onnx} is there (what the ONNX backend runs)
 */
public record ModelFolder(Path dir, boolean config, boolean safetensors, boolean onnx) {

    static final String CONFIG = "config.json";
    static final String SINGLE = "model.safetensors";
    static final String INDEX = "model.safetensors.index.json";
    static final String ONNX = "model.onnx";

    /** How to get safetensors from a PyTorch pickle checkpoint, once, in Python. */
    static final String CONVERT = "convert it once in Python: from transformers import AutoModelForCausalLM; "
            + "AutoModelForCausalLM.from_pretrained(\"DIR\").save_pretrained(\"DIR-safetensors\", "
            + "safe_serialization=True) (then copy tokenizer.json beside it), or download the repository's "
            + "safetensors files where the Hub has them";

    /**
     * Looks at {@code path}: a folder holding {@code config.json} or {@code model.onnx} passes (a folder with
     * {@code config.json} alone is enough to plan); anything else is a {@link ModelFolderException} saying what
     * was found.
     */
    public static ModelFolder inspect(Path path) {
        if (!Files.exists(path)) {
            throw new ModelFolderException(path, "no such folder: " + path);
        }
        if (!Files.isDirectory(path)) {
            if (isGguf(path)) {
                throw new ModelFolderException(path, gguf(path + " is a GGUF file"));
            }
            throw new ModelFolderException(path, path + " is a file; pass the model's folder (the one holding "
                    + "config.json and the safetensors weights, or model.onnx)");
        }
        ModelFolder f = new ModelFolder(path, Files.isRegularFile(path.resolve(CONFIG)),
                Files.isRegularFile(path.resolve(SINGLE)) || Files.isRegularFile(path.resolve(INDEX)),
                Files.isRegularFile(path.resolve(ONNX)));
        if (!f.config && !f.onnx) {
            List<String> names = names(path);
            List<String> ggufs = names.stream().filter(n -> n.toLowerCase().endsWith(".gguf")).toList();
            if (!ggufs.isEmpty()) {
                throw new ModelFolderException(path, gguf(path + " holds GGUF files (" + shortList(ggufs) + ")"));
            }
            throw new ModelFolderException(path, path + " has no config.json (nor model.onnx): "
                    + (names.stream().anyMatch(n -> n.endsWith(".incomplete")) ? "the download was interrupted "
                    + "(.incomplete files are there)" : "an incomplete download, or a gated model whose files were "
                    + "not fetched")
                    + "; found " + (names.isEmpty() ? "nothing" : shortList(names)) + ". Download the whole "
                    + "repository (huggingface-cli download ORG/NAME --local-dir DIR; for a gated model accept its "
                    + "license on the Hub and run huggingface-cli login first), or export model.onnx for the ONNX "
                    + "backend");
        }
        return f;
    }

    /**
     * Checks that the weights {@code backend} ({@code pytorch} or {@code onnx}) reads are there, shards included;
     * throws {@link ModelFolderException} naming what is missing and how to get it.
     */
    public ModelFolder requireWeightsFor(String backend) {
        if ("onnx".equals(backend)) {
            if (!onnx) {
                throw new ModelFolderException(dir, dir + " has no model.onnx, which the ONNX backend runs; export "
                        + "one (torch.onnx.export or optimum-cli export onnx), or use the PyTorch backend");
            }
            return this;
        }
        if (!config) {
            throw new ModelFolderException(dir, dir + " has no config.json, which the PyTorch backend builds the "
                    + "model from: an incomplete or gated download (download the whole repository), or use the "
                    + "ONNX backend for model.onnx");
        }
        if (!safetensors) {
            List<String> names = names(dir);
            List<String> pickles = names.stream().filter(ModelFolder::isPickle).toList();
            if (!pickles.isEmpty()) {
                throw new ModelFolderException(dir, dir + " holds PyTorch pickle weights (" + shortList(pickles)
                        + ") and no model.safetensors: Ferry reads safetensors only (a pickle can run code when "
                        + "loaded); " + CONVERT.replace("DIR", dir.toString()));
            }
            List<String> ggufs = names.stream().filter(n -> n.toLowerCase().endsWith(".gguf")).toList();
            if (!ggufs.isEmpty()) {
                throw new ModelFolderException(dir, gguf(dir + " holds GGUF files (" + shortList(ggufs) + ")"));
            }
            throw new ModelFolderException(dir, dir + " has config.json but no weights (model.safetensors or "
                    + "model.safetensors.index.json): an incomplete download; download the repository's "
                    + "*.safetensors files too");
        }
        if (!Files.isRegularFile(dir.resolve(SINGLE))) {
            List<String> missing = missingShards();
            if (!missing.isEmpty()) {
                throw new ModelFolderException(dir, dir + ": model.safetensors.index.json lists " + missing.size()
                        + " shard(s) that are not in the folder (" + shortList(missing) + "): an incomplete "
                        + "download; download the missing files");
            }
        }
        return this;
    }

    private List<String> missingShards() {
        JsonNode index;
        try {
            index = new ObjectMapper().readTree(dir.resolve(INDEX).toFile());
        } catch (IOException e) {
            // a broken index is the safetensors reader's to report, with its own message
            return List.of();
        }
        TreeSet<String> missing = new TreeSet<>();
        JsonNode map = index.path("weight_map");
        map.fields().forEachRemaining(e -> {
            String shard = e.getValue().asText();
            Path p = dir.resolve(shard).normalize();
            if (p.startsWith(dir.normalize()) && !Files.isRegularFile(p)) {
                missing.add(shard);
            }
        });
        return new ArrayList<>(missing);
    }

    private static String gguf(String found) {
        return found + " (llama.cpp's format, usually quantized): Ferry reads Hugging Face checkpoints (a folder with "
                + "config.json and *.safetensors) and ONNX exports (model.onnx). Download the model's original "
                + "repository rather than its GGUF conversion (huggingface-cli download ORG/NAME --local-dir DIR)";
    }

    /** Whether {@code file} starts with GGUF's magic bytes. */
    static boolean isGguf(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return Arrays.equals(in.readNBytes(4), new byte[] {'G', 'G', 'U', 'F'});
        } catch (IOException e) {
            return false;
        }
    }

    private static boolean isPickle(String name) {
        String n = name.toLowerCase();
        return n.endsWith(".bin") || n.endsWith(".pt") || n.endsWith(".pth") || n.endsWith(".ckpt");
    }

    private static List<String> names(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
    }

    private static String shortList(List<String> names) {
        return names.size() <= 6 ? String.join(", ", names)
                : String.join(", ", names.subList(0, 6)) + " and " + (names.size() - 6) + " more";
    }
}
