package dev.ferry.core.weights;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Hugging Face safetensors checkpoint: one {@code model.safetensors}, or shards listed by
 * {@code model.safetensors.index.json} whose {@code weight_map} says which file holds each tensor. Every
 * file is opened and its header validated at {@link #open}; no tensor bytes are read until asked for, and
 * then only that tensor's pages, so a model can be loaded one tensor at a time.
 */
public final class SafetensorsCheckpoint implements WeightsStore {

    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private static final Logger LOG = LoggerFactory.getLogger(SafetensorsCheckpoint.class);

    private final Path source;
    private final Map<Path, SafetensorsFile> files;
    private final Map<String, SafetensorsFile> byKey;
    private final Set<String> unlisted;

    private SafetensorsCheckpoint(Path source, Map<Path, SafetensorsFile> files, Map<String, SafetensorsFile> byKey,
            Set<String> unlisted) {
        this.source = source;
        this.files = files;
        this.byKey = byKey;
        this.unlisted = unlisted;
    }

    /**
     * Opens a checkpoint from a folder ({@code model.safetensors} if present, else
     * {@code model.safetensors.index.json}, the order transformers looks in), an index file
     * ({@code *.json}) or a single {@code .safetensors} file.
     */
    public static SafetensorsCheckpoint open(Path path) {
        if (Files.isDirectory(path)) {
            Path single = path.resolve(SINGLE_FILE);
            if (Files.isRegularFile(single)) {
                return openSingle(single);
            }
            Path index = path.resolve(INDEX_FILE);
            if (Files.isRegularFile(index)) {
                return openSharded(index);
            }
            throw new WeightsFormatException(path, null, "folder holds neither " + SINGLE_FILE + " nor " + INDEX_FILE);
        }
        if (!Files.isRegularFile(path)) {
            throw new WeightsFormatException(path, null, "no such checkpoint file or folder");
        }
        if (path.getFileName().toString().endsWith(".json")) {
            return openSharded(path);
        }
        return openSingle(path);
    }

    private static SafetensorsCheckpoint openSingle(Path file) {
        SafetensorsFile f = SafetensorsFile.open(file);
        Map<String, SafetensorsFile> byKey = new LinkedHashMap<>();
        for (String k : f.keys()) {
            byKey.put(k, f);
        }
        return new SafetensorsCheckpoint(file, Map.of(file, f), Collections.unmodifiableMap(byKey), Set.of());
    }

    private static SafetensorsCheckpoint openSharded(Path index) {
        JsonNode root = Json.readFile(index, "shard index");
        JsonNode weightMap = root == null ? null : root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new WeightsFormatException(index, null, "no weight_map object (tensor name to shard file)");
        }
        Path folder = index.toAbsolutePath().normalize().getParent();
        Map<String, Path> shardOf = new LinkedHashMap<>();
        Map<Path, String> firstKeyOf = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : weightMap.properties()) {
            if (!e.getValue().isTextual()) {
                throw new WeightsFormatException(index, e.getKey(), "weight_map value must be a shard file name, got "
                        + e.getValue());
            }
            Path shard = resolveInside(index, folder, e.getKey(), e.getValue().textValue());
            shardOf.put(e.getKey(), shard);
            firstKeyOf.putIfAbsent(shard, e.getKey());
        }
        List<String> missing = new ArrayList<>();
        for (Map.Entry<Path, String> e : firstKeyOf.entrySet()) {
            if (!Files.isRegularFile(e.getKey())) {
                missing.add(e.getKey().getFileName() + " (holding '" + e.getValue() + "')");
            }
        }
        if (!missing.isEmpty()) {
            throw new WeightsFormatException(index, null, "weight_map lists shard files that do not exist: " + missing);
        }
        Map<Path, SafetensorsFile> files = new LinkedHashMap<>();
        try {
            for (Path shard : firstKeyOf.keySet()) {
                files.put(shard, SafetensorsFile.open(shard));
            }
            Map<String, SafetensorsFile> byKey = new LinkedHashMap<>();
            for (Map.Entry<String, Path> e : shardOf.entrySet()) {
                SafetensorsFile f = files.get(e.getValue());
                if (!f.contains(e.getKey())) {
                    throw new WeightsFormatException(index, e.getKey(), "weight_map puts it in "
                            + e.getValue().getFileName() + ", which has no such tensor");
                }
                byKey.put(e.getKey(), f);
            }
            Set<String> unlisted = new TreeSet<>();
            for (SafetensorsFile f : files.values()) {
                for (String k : f.keys()) {
                    if (!byKey.containsKey(k) || byKey.get(k) != f) {
                        unlisted.add(k + " (in " + f.path().getFileName() + ")");
                    }
                }
            }
            if (!unlisted.isEmpty()) {
                LOG.warn("{}: shards hold tensors weight_map does not list, ignored: {}", index, unlisted);
            }
            return new SafetensorsCheckpoint(index, Collections.unmodifiableMap(files),
                    Collections.unmodifiableMap(byKey), Collections.unmodifiableSet(unlisted));
        } catch (RuntimeException e) {
            for (SafetensorsFile f : files.values()) {
                try {
                    f.close();
                } catch (RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }

    /** A shard name must stay inside the index's folder. */
    private static Path resolveInside(Path index, Path folder, String key, String name) {
        Path shard = folder.resolve(name).normalize();
        if (name.isEmpty() || !shard.startsWith(folder) || shard.equals(folder)) {
            throw new WeightsFormatException(index, key, "weight_map names shard '" + name
                    + "', which is not a file inside " + folder);
        }
        return shard;
    }

    /** The checkpoint file or the index it was opened from. */
    public Path source() {
        return source;
    }

    public boolean isSharded() {
        return source.getFileName().toString().endsWith(".json");
    }

    /** The safetensors files, in the order the index first names them. */
    public List<Path> files() {
        return List.copyOf(files.keySet());
    }

    /** The open file holding {@code key}: for reading it straight from its mapping, one file at a time. */
    public SafetensorsFile fileOf(String key) {
        SafetensorsFile f = byKey.get(key);
        if (f == null) {
            throw new NoSuchElementException("no tensor '" + key + "' in checkpoint " + source);
        }
        return f;
    }

    /** The keys each file holds (as the index lists them), files in {@link #files()} order. */
    public Map<Path, List<String>> keysByFile() {
        Map<Path, List<String>> out = new LinkedHashMap<>();
        for (Path p : files.keySet()) {
            out.put(p, new ArrayList<>());
        }
        byKey.forEach((k, f) -> out.get(f.path()).add(k));
        return out;
    }

    /** Tensors found in shards that {@code weight_map} does not list (ignored), as "name (in file)". */
    public Set<String> unlistedKeys() {
        return unlisted;
    }

    @Override
    public Set<String> keys() {
        return byKey.keySet();
    }

    @Override
    public boolean contains(String key) {
        return byKey.containsKey(key);
    }

    @Override
    public TensorSpec spec(String key) {
        return fileOf(key).spec(key);
    }

    @Override
    public ByteBuffer bytes(String key) {
        return fileOf(key).bytes(key);
    }

    @Override
    public List<ByteBuffer> chunks(String key, int maxChunkBytes) {
        return fileOf(key).chunks(key, maxChunkBytes);
    }

    @Override
    public void read(String key, ByteBuffer dst) {
        fileOf(key).read(key, dst);
    }

    @Override
    public boolean streamsFromFile(String key) {
        return fileOf(key).streamsFromFile(key);
    }

    @Override
    public void close() {
        RuntimeException first = null;
        for (SafetensorsFile f : files.values()) {
            try {
                f.close();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    @Override
    public String toString() {
        return "SafetensorsCheckpoint[" + source + ", " + files.size() + " files, " + byKey.size() + " tensors]";
    }
}
