package dev.ferry.core.weights;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import dev.ferry.core.tensor.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A disk offload folder in the layout Accelerate's {@code offload_state_dict} writes, so folders made by
 * either tool work in the other:
 * <ul>
 * <li>{@code index.json}: tensor name to {@code {"dtype": "float32", "shape": [64, 64]}}, dtype in NumPy /
 * PyTorch spelling; bfloat16 is tagged {@code "bfloat16"} (Accelerate stores its bits as int16);</li>
 * <li>one headerless little-endian {@code <name>.dat} per tensor, C order; a 0-d tensor has
 * {@code "shape": []} in the index and one element in its file.</li>
 * </ul>
 * An entry may instead point into a safetensors file, as Accelerate's {@code OffloadedWeightsLoader}
 * accepts: {@code {"safetensors_file": path, "weight_name": name, "dtype": "float16"}} ({@code weight_name}
 * defaults to the key; {@code dtype}, when it differs from the file's, converts on read as Accelerate
 * does; a relative path is taken from the folder). Disk offload can so read the checkpoint itself.
 *
 * <p>Opening checks every entry (dtypes, shapes, each {@code .dat} present with exactly the expected size,
 * each referenced safetensors file valid and holding the tensor); {@link #check} compares a folder with
 * the specs a model expects, and {@link #writer} rewrites one cleanly: the old index is removed first and
 * the new one written last, atomically, so an interrupted write never looks complete.
 */
public final class OffloadFolder implements WeightsStore {

    public static final String INDEX = "index.json";

    private static final Logger LOG = LoggerFactory.getLogger(OffloadFolder.class);

    /** One index entry. */
    public sealed interface Entry permits DatEntry, SafetensorsEntry {
        /** The tensor as this store gives it (after any dtype conversion). */
        TensorSpec spec();

        /** The file its bytes come from. */
        Path file();
    }

    /** A tensor in its own raw {@code <name>.dat}. */
    public record DatEntry(TensorSpec spec, Path file) implements Entry {
    }

    /**
     * A tensor read from {@code weightName} of a safetensors file; {@code storedDType} is its dtype in the
     * file, converted to {@code spec().dtype()} on read when they differ.
     */
    public record SafetensorsEntry(TensorSpec spec, Path file, String weightName, DType storedDType) implements Entry {
    }

    private final Path folder;
    private final Map<String, Entry> entries;
    private final Map<Path, SafetensorsFile> safetensors;
    /** One mapping per .dat file, made on first use: repeated reads add no new mappings. */
    private final Map<String, ByteBuffer> mapped = new java.util.concurrent.ConcurrentHashMap<>();
    private volatile boolean closed;

    private OffloadFolder(Path folder, Map<String, Entry> entries, Map<Path, SafetensorsFile> safetensors) {
        this.folder = folder;
        this.entries = entries;
        this.safetensors = safetensors;
    }

    // ------------------------------------------------------------------ reading

    /** Opens a folder and checks every entry; a {@link WeightsFormatException} naming the first bad one. */
    public static OffloadFolder open(Path folder) {
        Path index = folder.resolve(INDEX);
        if (!Files.isRegularFile(index)) {
            throw new WeightsFormatException(folder, null, "no " + INDEX
                    + "; not an offload folder, or a write that did not finish");
        }
        JsonNode root = readIndex(index);
        Map<Path, SafetensorsFile> files = new LinkedHashMap<>();
        try {
            Map<String, Entry> entries = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : root.properties()) {
                Entry entry = parseEntry(folder, index, e.getKey(), e.getValue(), files);
                verify(e.getKey(), entry);
                entries.put(e.getKey(), entry);
            }
            return new OffloadFolder(folder, Collections.unmodifiableMap(entries), files);
        } catch (RuntimeException e) {
            closeAll(files.values(), e);
            throw e;
        }
    }

    /**
     * Opens a folder that must match {@code expected} (name to spec): a {@link WeightsFormatException}
     * naming every missing, mismatched or unreadable key when it does not. Extra keys are allowed.
     */
    public static OffloadFolder openExpecting(Path folder, Map<String, TensorSpec> expected) {
        Staleness s = check(folder, expected);
        if (s.isStale()) {
            throw new WeightsFormatException(folder, null, s.describe());
        }
        return open(folder);
    }

    /**
     * Compares a folder with the tensors a model expects, without trusting it: missing keys, other
     * dtypes or shapes, {@code .dat} files missing or of the wrong size, safetensors references that do
     * not resolve. A folder without an index is stale with every key missing.
     */
    public static Staleness check(Path folder, Map<String, TensorSpec> expected) {
        Path index = folder.resolve(INDEX);
        List<String> missing = new ArrayList<>();
        Map<String, String> mismatched = new TreeMap<>();
        Map<String, String> unreadable = new TreeMap<>();
        List<String> extra = new ArrayList<>();
        if (!Files.isRegularFile(index)) {
            missing.addAll(expected.keySet());
            Collections.sort(missing);
            return new Staleness(folder, false, missing, mismatched, unreadable, extra);
        }
        JsonNode root;
        try {
            root = readIndex(index);
        } catch (WeightsFormatException e) {
            unreadable.put(INDEX, e.getMessage());
            missing.addAll(expected.keySet());
            Collections.sort(missing);
            return new Staleness(folder, true, missing, mismatched, unreadable, extra);
        }
        Map<Path, SafetensorsFile> files = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, TensorSpec> want : expected.entrySet()) {
                String key = want.getKey();
                JsonNode node = root.get(key);
                if (node == null) {
                    missing.add(key);
                    continue;
                }
                Entry entry;
                try {
                    entry = parseEntry(folder, index, key, node, files);
                } catch (WeightsFormatException | UncheckedIOException e) {
                    unreadable.put(key, e.getMessage());
                    continue;
                }
                if (!entry.spec().equals(want.getValue())) {
                    mismatched.put(key, "expected " + want.getValue() + ", folder has " + entry.spec());
                    continue;
                }
                try {
                    verify(key, entry);
                } catch (WeightsFormatException | UncheckedIOException e) {
                    unreadable.put(key, e.getMessage());
                }
            }
        } finally {
            closeAll(files.values(), null);
        }
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            if (!expected.containsKey(e.getKey())) {
                extra.add(e.getKey());
            }
        }
        Collections.sort(missing);
        Collections.sort(extra);
        return new Staleness(folder, true, missing, mismatched, unreadable, extra);
    }

    /**
     * How an offload folder compares with what a model expects. Stale when the index is absent or
     * unreadable or any expected key is missing, mismatched or unreadable; extra keys alone are not stale.
     */
    public record Staleness(Path folder, boolean indexFound, List<String> missing, Map<String, String> mismatched,
            Map<String, String> unreadable, List<String> extra) {

        public Staleness {
            missing = List.copyOf(missing);
            mismatched = Collections.unmodifiableMap(new TreeMap<>(mismatched));
            unreadable = Collections.unmodifiableMap(new TreeMap<>(unreadable));
            extra = List.copyOf(extra);
        }

        public boolean isStale() {
            return !indexFound || !missing.isEmpty() || !mismatched.isEmpty() || !unreadable.isEmpty();
        }

        /** One line per problem, naming the keys. */
        public String describe() {
            if (!isStale()) {
                return "offload folder " + folder + " matches the model"
                        + (extra.isEmpty() ? "" : " (extra keys ignored: " + extra + ")");
            }
            StringBuilder sb = new StringBuilder("offload folder does not match the model");
            if (!indexFound) {
                sb.append("; no ").append(INDEX);
            }
            if (!missing.isEmpty()) {
                sb.append("; missing keys: ").append(missing);
            }
            mismatched.forEach((k, v) -> sb.append("; '").append(k).append("': ").append(v));
            unreadable.forEach((k, v) -> sb.append("; '").append(k).append("' unreadable: ").append(v));
            return sb.append("; rewrite it with OffloadFolder.writer").toString();
        }
    }

    private static JsonNode readIndex(Path index) {
        JsonNode root = Json.readFile(index, INDEX);
        if (root == null || !root.isObject()) {
            throw new WeightsFormatException(index, null, "must be a JSON object of tensor name to entry");
        }
        return root;
    }

    private static Entry parseEntry(Path folder, Path index, String key, JsonNode node,
            Map<Path, SafetensorsFile> files) {
        if (!node.isObject()) {
            throw new WeightsFormatException(index, key, "entry must be an object, got " + node.getNodeType());
        }
        DType dtype = null;
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode != null && !dtypeNode.isNull()) {
            if (!dtypeNode.isTextual()) {
                throw new WeightsFormatException(index, key, "dtype must be a string, got " + dtypeNode);
            }
            try {
                dtype = DType.fromTorch(dtypeNode.textValue());
            } catch (IllegalArgumentException e) {
                throw new WeightsFormatException(index, key, e.getMessage(), e);
            }
        }
        long[] shape = null;
        JsonNode shapeNode = node.get("shape");
        if (shapeNode != null && !shapeNode.isNull()) {
            shape = readShape(index, key, shapeNode);
        }
        JsonNode st = node.get("safetensors_file");
        if (st != null && !st.isNull()) {
            if (!st.isTextual()) {
                throw new WeightsFormatException(index, key, "safetensors_file must be a path, got " + st);
            }
            Path file = folder.resolve(st.textValue()).toAbsolutePath().normalize();
            JsonNode wn = node.get("weight_name");
            String weightName = wn == null || wn.isNull() ? key : wn.asText();
            SafetensorsFile sf = files.get(file);
            if (sf == null) {
                if (!Files.isRegularFile(file)) {
                    throw new WeightsFormatException(index, key, "safetensors_file " + file + " does not exist");
                }
                sf = SafetensorsFile.openAnyFormat(file);
                files.put(file, sf);
            }
            if (!sf.contains(weightName)) {
                throw new WeightsFormatException(file, weightName, "named by " + INDEX + " entry '" + key
                        + "' but not in the file");
            }
            TensorSpec stored = sf.spec(weightName);
            if (shape != null && !java.util.Arrays.equals(shape, stored.shape())) {
                throw new WeightsFormatException(index, key, "index says shape " + java.util.Arrays.toString(shape)
                        + " but " + file.getFileName() + " holds '" + weightName + "' as " + stored);
            }
            DType target = dtype == null ? stored.dtype() : dtype;
            if (!DTypeConversion.supports(stored.dtype(), target)) {
                throw new WeightsFormatException(index, key, "cannot read " + stored.dtype().torchName()
                        + " tensor '" + weightName + "' of " + file.getFileName() + " as " + target.torchName());
            }
            return new SafetensorsEntry(stored.withDType(target), file, weightName, stored.dtype());
        }
        if (dtype == null || shape == null) {
            throw new WeightsFormatException(index, key, "entry needs dtype and shape (or safetensors_file), got "
                    + node);
        }
        return new DatEntry(new TensorSpec(shape, dtype), datFile(folder, index, key));
    }

    private static long[] readShape(Path index, String key, JsonNode node) {
        if (!node.isArray()) {
            throw new WeightsFormatException(index, key, "shape must be an array, got " + node);
        }
        long[] shape = new long[node.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new WeightsFormatException(index, key, "shape must hold non-negative integers, got " + node);
            }
            shape[i] = v.longValue();
        }
        return shape;
    }

    /** {@code <name>.dat} in the folder; names that would leave it are refused. */
    private static Path datFile(Path folder, Path where, String key) {
        if (key.isEmpty() || key.equals(".") || key.equals("..") || key.indexOf('/') >= 0
                || key.indexOf('\\') >= 0 || key.indexOf('\0') >= 0) {
            throw new WeightsFormatException(where, key, "name cannot be a file name in the offload folder");
        }
        return folder.resolve(key + ".dat");
    }

    private static void verify(String key, Entry entry) {
        if (entry instanceof DatEntry dat) {
            long expected;
            try {
                expected = dat.spec().byteSize();
            } catch (ArithmeticException e) {
                throw new WeightsFormatException(dat.file(), key, "shape " + dat.spec() + " overflows a byte count");
            }
            long size;
            try {
                size = Files.size(dat.file());
            } catch (java.nio.file.NoSuchFileException e) {
                throw new WeightsFormatException(dat.file(), key, "file is missing (" + dat.spec() + " expected)");
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + dat.file(), e);
            }
            if (size != expected) {
                throw new WeightsFormatException(dat.file(), key, "file is " + size + " bytes but " + dat.spec()
                        + " needs " + expected);
            }
        }
    }

    public Path folder() {
        return folder;
    }

    public Map<String, Entry> entries() {
        return entries;
    }

    public Entry entry(String key) {
        Entry e = entries.get(key);
        if (e == null) {
            throw new NoSuchElementException("no tensor '" + key + "' in offload folder " + folder);
        }
        return e;
    }

    @Override
    public Set<String> keys() {
        return entries.keySet();
    }

    @Override
    public boolean contains(String key) {
        return entries.containsKey(key);
    }

    @Override
    public TensorSpec spec(String key) {
        return entry(key).spec();
    }

    /**
     * The tensor's bytes: a zero-copy read-only mapping of its {@code .dat} (made on first use, then shared)
     * or of its range in the safetensors file; a new direct buffer when a safetensors entry converts the
     * dtype.
     */
    @Override
    public ByteBuffer bytes(String key) {
        Entry e = entry(key);
        checkOpen();
        if (e instanceof SafetensorsEntry st) {
            ByteBuffer stored = safetensors.get(st.file()).bytes(st.weightName());
            if (st.storedDType() == st.spec().dtype()) {
                return stored;
            }
            return DTypeConversion.convert(stored, st.storedDType(), st.spec().dtype()).asReadOnlyBuffer()
                    .order(ByteOrder.LITTLE_ENDIAN);
        }
        long size = e.spec().byteSize();
        if (size > Integer.MAX_VALUE) {
            throw new IllegalStateException("tensor '" + key + "' in " + e.file() + " is " + size
                    + " bytes, over the 2 GiB one ByteBuffer can hold; read it with chunks(key, size)");
        }
        return mapped.computeIfAbsent(key, k -> mapDat(e.file(), 0, size))
                .duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public List<ByteBuffer> chunks(String key, int maxChunkBytes) {
        Entry e = entry(key);
        checkOpen();
        if (e instanceof SafetensorsEntry st) {
            if (st.storedDType() == st.spec().dtype()) {
                return safetensors.get(st.file()).chunks(st.weightName(), maxChunkBytes);
            }
            return WeightsStore.super.chunks(key, maxChunkBytes);
        }
        return WeightsStore.chunked(e.spec().byteSize(), maxChunkBytes, (pos, len) -> mapDat(e.file(), pos, len));
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("offload folder " + folder + " is closed");
        }
    }

    private static ByteBuffer mapDat(Path file, long offset, long length) {
        if (length == 0) {
            return ByteBuffer.allocateDirect(0).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            if (ch.size() < offset + length) {
                throw new WeightsFormatException(file, null, "file is " + ch.size() + " bytes, shorter than the "
                        + (offset + length) + " its index entry needs (changed since the folder was opened)");
            }
            return ch.map(FileChannel.MapMode.READ_ONLY, offset, length).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot map " + file, e);
        }
    }

    /** Closes the safetensors files that entries point into. */
    @Override
    public void close() {
        closed = true;
        mapped.clear();
        closeAll(safetensors.values(), null);
    }

    private static void closeAll(Collection<SafetensorsFile> files, Throwable primary) {
        for (SafetensorsFile f : files) {
            try {
                f.close();
            } catch (RuntimeException e) {
                if (primary != null) {
                    primary.addSuppressed(e);
                } else {
                    LOG.warn("cannot close {}", f.path(), e);
                }
            }
        }
    }

    @Override
    public String toString() {
        return "OffloadFolder[" + folder + ", " + entries.size() + " tensors]";
    }

    // ------------------------------------------------------------------ writing

    /** Writes {@code keys} of {@code source} as {@code .dat} files and returns the folder, opened. */
    public static OffloadFolder write(Path folder, WeightsStore source, Collection<String> keys) {
        Writer w = writer(folder);
        for (String k : keys) {
            w.putFrom(source, k);
        }
        return w.commit();
    }

    /**
     * Starts a clean rewrite of {@code folder}: its {@code index.json} is removed at once, so until
     * {@link Writer#commit} the folder does not look complete.
     */
    public static Writer writer(Path folder) {
        return new Writer(folder);
    }

    /**
     * Writes an offload folder: each {@link #put} writes its {@code .dat} straight away (one tensor in
     * flight at a time); {@link #commit} removes the {@code .dat} files of the previous index that the new
     * one does not list, then writes {@code index.json} atomically.
     */
    public static final class Writer {

        private final Path folder;
        private final Map<String, ObjectNode> index = new LinkedHashMap<>();
        private final List<String> previousDatKeys = new ArrayList<>();
        private boolean committed;

        private Writer(Path folder) {
            this.folder = folder;
            Path indexFile = folder.resolve(INDEX);
            try {
                Files.createDirectories(folder);
                if (Files.isRegularFile(indexFile)) {
                    rememberPrevious(indexFile);
                    Files.delete(indexFile);
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot prepare offload folder " + folder, e);
            }
        }

        private void rememberPrevious(Path indexFile) {
            try {
                JsonNode root = readIndex(indexFile);
                for (Map.Entry<String, JsonNode> e : root.properties()) {
                    JsonNode st = e.getValue().get("safetensors_file");
                    if (st == null || st.isNull()) {
                        previousDatKeys.add(e.getKey());
                    }
                }
            } catch (WeightsFormatException e) {
                LOG.warn("previous index of {} is unreadable; its .dat files are left in place: {}", folder,
                        e.getMessage());
            }
        }

        /** Writes {@code bytes}' remaining bytes as {@code <name>.dat}; {@code bytes} is not changed. */
        public Writer put(String name, TensorSpec spec, ByteBuffer bytes) {
            if (bytes.remaining() != spec.byteSize()) {
                throw new IllegalArgumentException("tensor '" + name + "' " + spec + " needs " + spec.byteSize()
                        + " bytes, got " + bytes.remaining());
            }
            return writeDat(name, spec, List.of(bytes.duplicate()));
        }

        /** Copies {@code key} of {@code store} into {@code <key>.dat}, a chunk at a time. */
        public Writer putFrom(WeightsStore store, String key) {
            return writeDat(key, store.spec(key), store.chunks(key, SafetensorsFile.MAX_CHUNK_BYTES));
        }

        private Writer writeDat(String name, TensorSpec spec, List<ByteBuffer> chunks) {
            checkNotCommitted();
            Path file = datFile(folder, folder, name);
            long written = 0;
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                for (ByteBuffer c : chunks) {
                    written += AtomicFiles.writeFully(ch, c.duplicate());
                }
                ch.force(false);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + file, e);
            }
            if (written != spec.byteSize()) {
                throw new IllegalStateException("tensor '" + name + "' " + spec + " should be " + spec.byteSize()
                        + " bytes but its source gave " + written);
            }
            ObjectNode entry = Json.MAPPER.createObjectNode();
            entry.put("dtype", spec.dtype().torchName());
            ArrayNode shape = entry.putArray("shape");
            for (long d : spec.shape()) {
                shape.add(d);
            }
            index.put(name, entry);
            return this;
        }

        /**
         * Adds an entry reading {@code weightName} from a safetensors file in place (no copy on disk), in
         * Accelerate's form {@code {"safetensors_file", "weight_name", "dtype"}} with the file's dtype.
         */
        public Writer reference(String name, Path safetensorsFile, String weightName) {
            checkNotCommitted();
            Path file = safetensorsFile.toAbsolutePath().normalize();
            DType dtype;
            try (SafetensorsFile sf = SafetensorsFile.openAnyFormat(file)) {
                if (!sf.contains(weightName)) {
                    throw new WeightsFormatException(file, weightName, "cannot reference it from offload entry '"
                            + name + "': not in the file");
                }
                dtype = sf.spec(weightName).dtype();
            }
            ObjectNode entry = Json.MAPPER.createObjectNode();
            entry.put("safetensors_file", file.toString());
            entry.put("weight_name", weightName);
            entry.put("dtype", dtype.torchName());
            index.put(name, entry);
            return this;
        }

        /** Adds an entry reading {@code key} in place from the checkpoint file that holds it. */
        public Writer reference(SafetensorsCheckpoint checkpoint, String key) {
            return reference(key, checkpoint.fileOf(key).path(), key);
        }

        /** Removes leftover {@code .dat} files of the previous index, writes the index, opens the folder. */
        public OffloadFolder commit() {
            checkNotCommitted();
            for (String old : previousDatKeys) {
                ObjectNode now = index.get(old);
                if (now == null || now.has("safetensors_file")) {
                    try {
                        Files.deleteIfExists(datFile(folder, folder, old));
                    } catch (IOException | WeightsFormatException e) {
                        LOG.warn("cannot remove stale {}.dat from {}: {}", old, folder, e.getMessage());
                    }
                }
            }
            ObjectNode root = Json.MAPPER.createObjectNode();
            index.forEach(root::set);
            byte[] json;
            try {
                json = Json.PYTHON_INDENT_2.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new UncheckedIOException(e);
            }
            AtomicFiles.write(folder.resolve(INDEX), ch -> AtomicFiles.writeFully(ch, ByteBuffer.wrap(json)));
            committed = true;
            return open(folder);
        }

        private void checkNotCommitted() {
            if (committed) {
                throw new IllegalStateException("offload folder " + folder + " already committed");
            }
        }
    }
}
