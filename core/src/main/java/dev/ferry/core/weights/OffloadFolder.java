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
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
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
 * each referenced safetensors file valid, holding the tensor and lying inside the folder or the checkpoint
 * folder it was made from); {@link #check} compares a folder with the specs a model expects.
 *
 * <p>Writing ({@link #writer}, {@link #openFor}) happens only in a new or empty folder, in one Ferry made
 * (its marker {@code ferry-offload.json} lists every file Ferry wrote, with size, times, inode and CRC32C, and the
 * fingerprint of the checkpoint), or in an Accelerate folder the caller allows to be overwritten; anything
 * else is an {@link OffloadFolderRefusedException}, nothing touched. Writers hold the folder's file lock;
 * every file is written under a temporary name created new and renamed into place, so readers in other
 * processes never see a truncated file. Nothing the folder says about itself is trusted: every name its marker or
 * index lists must be a regular file of Ferry's layout inside it, or the folder is refused untouched; Ferry deletes
 * only files its marker lists, at the size its own index or claim gives them; a marker never widens where an index
 * may point.
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
    /** Size, time and identity of each .dat as opened: checked before each read, so a change is an error. */
    private final Map<String, FileState> datStates;
    /** CRC32C Ferry recorded for each .dat it wrote: verified when the tensor is first mapped. */
    private final Map<String, String> crcs;
    /** One mapping per .dat file, made on first use: repeated reads add no new mappings. */
    private final Map<String, ByteBuffer> mapped = new java.util.concurrent.ConcurrentHashMap<>();
    /** Tensors whose .dat bytes matched their recorded CRC32C once (read mode checks on first read). */
    private final Set<String> verifiedKeys = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private final FileAccess access = FileAccess.current();
    private volatile boolean closed;

    /** What a file was when the folder was opened. */
    record FileState(long size, long mtimeNanos, Object fileKey) {
        static FileState of(Path file) {
            BasicFileAttributes a = OffloadMarker.attributes(file);
            return a == null ? null : new FileState(a.size(), a.lastModifiedTime().to(TimeUnit.NANOSECONDS),
                    a.fileKey());
        }
    }

    private OffloadFolder(Path folder, Map<String, Entry> entries, Map<Path, SafetensorsFile> safetensors,
            Map<String, FileState> datStates, Map<String, String> crcs) {
        this.folder = folder;
        this.entries = entries;
        this.safetensors = safetensors;
        this.datStates = datStates;
        this.crcs = crcs;
    }

    // ------------------------------------------------------------------ reading

    /**
     * Opens a folder and checks every entry; a {@link WeightsFormatException} naming the first bad one. A
     * {@code safetensors_file} entry must resolve (after normalisation and following links) inside the folder; use
     * {@link #open(Path, Collection)} to allow the checkpoint folder a folder was made from.
     */
    public static OffloadFolder open(Path folder) {
        return open(folder, List.of());
    }

    /**
     * Opens a folder whose {@code safetensors_file} entries may also point into {@code allowedRoots} (the
     * folder of the checkpoint an Accelerate offload folder was made from); anywhere else is an error naming
     * the entry and where it leads.
     */
    public static OffloadFolder open(Path folder, Collection<Path> allowedRoots) {
        Path index = folder.resolve(INDEX);
        if (!Files.isRegularFile(index)) {
            throw new WeightsFormatException(folder, null, "no " + INDEX
                    + "; not an offload folder, or a write that did not finish");
        }
        Path real = realFolder(folder);
        OffloadMarker marker = OffloadMarker.read(real);
        if (marker != null && marker.state != OffloadMarker.State.COMPLETE) {
            throw new WeightsFormatException(folder, null, "a write by Ferry did not finish ("
                    + OffloadMarker.NAME + " says " + marker.state.name().toLowerCase(java.util.Locale.ROOT)
                    + "); load the model with this folder again to rewrite it");
        }
        List<Path> roots = roots(real, allowedRoots);
        JsonNode root = readIndex(index);
        Map<Path, SafetensorsFile> files = new LinkedHashMap<>();
        try {
            Map<String, Entry> entries = new LinkedHashMap<>();
            Map<String, FileState> states = new LinkedHashMap<>();
            Map<String, String> crcs = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : root.properties()) {
                Entry entry = parseEntry(real, index, e.getKey(), e.getValue(), files, roots);
                verify(e.getKey(), entry);
                entries.put(e.getKey(), entry);
                if (entry instanceof DatEntry dat) {
                    states.put(e.getKey(), FileState.of(dat.file()));
                    OffloadMarker.FileRecord rec = marker == null ? null
                            : marker.files.get(dat.file().getFileName().toString());
                    if (rec != null && rec.crc32c() != null) {
                        crcs.put(e.getKey(), rec.crc32c());
                    }
                }
            }
            return new OffloadFolder(real, Collections.unmodifiableMap(entries), files, states, crcs);
        } catch (RuntimeException e) {
            closeAll(files.values(), e);
            throw e;
        }
    }

    private static Path realFolder(Path folder) {
        try {
            return folder.toRealPath();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot resolve offload folder " + folder + ": " + IoErrors.reason(e), e);
        }
    }

    /**
     * Where entries may point: the folder and the roots the caller gives, never what a marker says (a marker is
     * data the folder holds about itself, so it cannot widen where Ferry reads).
     */
    private static List<Path> roots(Path realFolder, Collection<Path> allowed) {
        List<Path> roots = new ArrayList<>();
        roots.add(realFolder);
        for (Path p : allowed) {
            try {
                roots.add(p.toRealPath());
            } catch (IOException e) {
                // a root that does not exist holds nothing an entry could point to
            }
        }
        return List.copyOf(new java.util.LinkedHashSet<>(roots));
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
        return check(folder, expected, List.of());
    }

    /** {@link #check(Path, Map)} with entries allowed to point into {@code allowedRoots} as well. */
    public static Staleness check(Path folder, Map<String, TensorSpec> expected, Collection<Path> allowedRoots) {
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
        Path real = realFolder(folder);
        List<Path> roots = roots(real, allowedRoots);
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
                    entry = parseEntry(real, index, key, node, files, roots);
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
                sb.append("; ").append(missing.size()).append(" missing key(s): ")
                        .append(dev.ferry.core.text.Listing.cut(missing));
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
            Map<Path, SafetensorsFile> files, List<Path> roots) {
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
            Path file = confined(folder, index, key, st.textValue(), roots);
            JsonNode wn = node.get("weight_name");
            String weightName = wn == null || wn.isNull() ? key : wn.asText();
            SafetensorsFile sf = files.get(file);
            if (sf == null) {
                if (!Files.isRegularFile(file)) {
                    throw new WeightsFormatException(index, key, "safetensors_file " + file + " is not a regular file");
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

    /**
     * An entry's {@code safetensors_file}, resolved from the folder, normalised and with every link followed;
     * it must lie inside one of {@code roots} (real paths), else a {@link WeightsFormatException} naming the
     * entry, the path written and where it leads.
     */
    private static Path confined(Path folder, Path index, String key, String written, List<Path> roots) {
        Path resolved;
        try {
            resolved = folder.resolve(written).normalize();
        } catch (java.nio.file.InvalidPathException e) {
            throw new WeightsFormatException(index, key, "safetensors_file is not a valid path", e);
        }
        Path real;
        try {
            real = resolved.toRealPath();
        } catch (java.nio.file.NoSuchFileException e) {
            throw new WeightsFormatException(index, key, "safetensors_file " + resolved + " does not exist");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot resolve safetensors_file " + resolved + " of " + index, e);
        }
        for (Path r : roots) {
            if (real.startsWith(r) && !real.equals(r)) {
                return real;
            }
        }
        throw new WeightsFormatException(index, key, "safetensors_file '" + written + "' leads to " + real
                + ", outside the offload folder" + (roots.size() > 1 ? " and the checkpoint folders " : " ")
                + roots + "; an entry may only point into the folder or the checkpoint it was made from");
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
            // links are not followed: a .dat is confined to the folder as a safetensors_file is, and a link (to a
            // file outside or not) or a FIFO at its name is refused, never opened
            FileStamp stamp = FileStamp.of(dat.file());
            if (stamp == null) {
                throw new WeightsFormatException(dat.file(), key, "file is missing (" + dat.spec() + " expected)");
            }
            if (!stamp.regular()) {
                throw new WeightsFormatException(dat.file(), key, "file is " + stamp.kind() + linkTarget(dat.file())
                        + "; a tensor's .dat must be a regular file inside the offload folder");
            }
            long size = stamp.size();
            if (size != expected) {
                throw new WeightsFormatException(dat.file(), key, "file is " + size + " bytes but " + dat.spec()
                        + " needs " + expected);
            }
        }
    }

    private static String linkTarget(Path file) {
        try {
            return Files.isSymbolicLink(file) ? " to " + Files.readSymbolicLink(file) : "";
        } catch (IOException e) {
            return "";
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
     * The tensor's bytes: read from its {@code .dat} (or its range of the safetensors file) into a new direct buffer,
     * by positional reads, so a file truncated meanwhile is a {@link WeightsFileChangedException}; with
     * {@link FileAccess#MAP_IN_PLACE_UNSAFE} a zero-copy mapping (made on first use, then shared). A new direct buffer
     * when a safetensors entry converts the dtype.
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
        checkUnchanged(key, e.file());
        if (access == FileAccess.READ) {
            ByteBuffer out = ByteBuffer.allocateDirect((int) size).order(ByteOrder.LITTLE_ENDIAN);
            readDat(key, e.file(), out);
            return out.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }
        return mapped.computeIfAbsent(key, k -> verified(k, e.file(), mapDat(e.file(), 0, size)))
                .duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * A range of the tensor's bytes (the rows an offloaded embedding looks up): read from the checkpoint alone when
     * the entry points into one unconverted. A {@code .dat} is read whole the first time, so that its CRC32C is
     * checked as always, and by the range after that (with reads, not mappings).
     */
    @Override
    public ByteBuffer bytes(String key, long offset, int length) {
        Entry e = entry(key);
        checkOpen();
        if (offset < 0 || length < 0 || offset + length > e.spec().byteSize()) {
            throw new IllegalArgumentException("bytes " + offset + ".." + (offset + length) + " of tensor '" + key
                    + "' in " + e.file() + ", which is " + e.spec().byteSize() + " bytes");
        }
        if (e instanceof SafetensorsEntry st && st.storedDType() == st.spec().dtype()) {
            return safetensors.get(st.file()).bytes(st.weightName(), offset, length);
        }
        if (e instanceof DatEntry dat && access == FileAccess.READ && verifiedKeys.contains(key)) {
            checkUnchanged(key, dat.file());
            try (FileChannel ch = FileChannel.open(dat.file(), StandardOpenOption.READ)) {
                return FileReads.readOwned(ch, dat.file(), key, offset, length);
            } catch (java.nio.file.NoSuchFileException ex) {
                throw new WeightsFileChangedException(dat.file(), key, "was removed since the folder was opened");
            } catch (IOException ex) {
                throw new UncheckedIOException("cannot read " + dat.file() + ": " + IoErrors.reason(ex), ex);
            }
        }
        return WeightsStore.super.bytes(key, offset, length);
    }

    /** Reads the tensor's bytes into {@code dst} by positional reads (whatever the {@link FileAccess}). */
    @Override
    public void read(String key, ByteBuffer dst) {
        Entry e = entry(key);
        checkOpen();
        if (e instanceof SafetensorsEntry st) {
            if (st.storedDType() == st.spec().dtype()) {
                safetensors.get(st.file()).read(st.weightName(), dst);
            } else {
                dst.put(bytes(key));
            }
            return;
        }
        long size = e.spec().byteSize();
        if (dst.remaining() < size) {
            throw new IllegalArgumentException("tensor '" + key + "' is " + size + " bytes; the buffer has room for "
                    + dst.remaining());
        }
        checkUnchanged(key, e.file());
        readDat(key, e.file(), dst.slice(dst.position(), (int) size));
        dst.position(dst.position() + (int) size);
    }

    @Override
    public boolean streamsFromFile(String key) {
        Entry e = entry(key);
        if (e instanceof SafetensorsEntry st) {
            return st.storedDType() == st.spec().dtype() && safetensors.get(st.file()).streamsFromFile(st.weightName());
        }
        return access == FileAccess.READ && e.spec().byteSize() <= Integer.MAX_VALUE;
    }

    /** Fills {@code dst} (position to limit) from the start of {@code file}; checks the CRC32C on the first read. */
    private void readDat(String key, Path file, ByteBuffer dst) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            FileReads.readFully(ch, file, key, 0, dst);
        } catch (java.nio.file.NoSuchFileException ex) {
            throw new WeightsFileChangedException(file, key, "was removed since the folder was opened");
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot read " + file + ": " + IoErrors.reason(ex), ex);
        }
        if (!verifiedKeys.contains(key)) {
            verified(key, file, dst.duplicate());
            verifiedKeys.add(key);
        }
    }

    /**
     * The {@code .dat} must still be the file this folder opened (same size, time and identity): a file
     * truncated, rewritten or replaced since is an {@link IllegalStateException} naming it, never a mapping
     * past its end (SIGBUS) nor another model's weights.
     */
    private void checkUnchanged(String key, Path file) {
        FileState was = datStates.get(key);
        FileState now = FileState.of(file);
        if (was == null || was.equals(now)) {
            return;
        }
        throw new IllegalStateException("offload file " + file + " of tensor '" + key + "' changed since the folder "
                + "was opened: it was " + was.size() + " bytes, modified at " + was.mtimeNanos() + " ns, and is "
                + (now == null ? "gone" : now.size() + " bytes, modified at " + now.mtimeNanos() + " ns"
                + (java.util.Objects.equals(was.fileKey(), now.fileKey()) ? "" : ", another file"))
                + "; load the model again");
    }

    /** On first mapping, the CRC32C Ferry recorded when it wrote the file must match its bytes. */
    private ByteBuffer verified(String key, Path file, ByteBuffer bytes) {
        String expected = crcs.get(key);
        if (expected != null) {
            String actual = crc32c(List.of(bytes));
            if (!expected.equals(actual)) {
                throw new IllegalStateException("offload file " + file + " of tensor '" + key + "' does not hold what "
                        + "Ferry wrote there (CRC32C " + actual + ", recorded " + expected + "); delete " + file
                        + " and load the model again: Ferry rewrites a folder whose files are missing");
            }
        }
        return bytes;
    }

    static String crc32c(List<ByteBuffer> chunks) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        for (ByteBuffer c : chunks) {
            crc.update(c.duplicate());
        }
        return String.format("%08x", crc.getValue());
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
        checkUnchanged(key, e.file());
        if (access == FileAccess.READ) {
            return WeightsStore.chunked(e.spec().byteSize(), maxChunkBytes, (pos, len) -> {
                try (FileChannel ch = FileChannel.open(e.file(), StandardOpenOption.READ)) {
                    return FileReads.readOwned(ch, e.file(), key, pos, (int) len);
                } catch (IOException ex) {
                    throw new UncheckedIOException("cannot read " + e.file() + ": " + IoErrors.reason(ex), ex);
                }
            });
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
            return MemoryMapping.map(ch, file, offset, length);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open " + file, e);
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

    // ------------------------------------------------------------------ ownership

    /** What a folder holds, as far as writing into it goes. */
    enum Kind {
        /** No such path: Ferry may create it. */
        MISSING,
        /** A folder with nothing in it (but Ferry's lock file): Ferry may write. */
        EMPTY,
        /** A folder with Ferry's marker: Ferry may rewrite the files the marker lists. */
        FERRY,
        /** An offload folder ({@code index.json}) without Ferry's marker: rewritten only when allowed. */
        FOREIGN_INDEX,
        /** Anything else: never written. */
        OTHER
    }

    record Contents(Path folder, Kind kind, List<String> names, OffloadMarker marker) {

        /** The refusal, or null when Ferry may write here ({@code overwrite}: an offload folder may be rewritten). */
        OffloadFolderRefusedException refusal(boolean overwrite) {
            return switch (kind) {
                case MISSING, EMPTY, FERRY -> null;
                case FOREIGN_INDEX -> overwrite ? null : new OffloadFolderRefusedException(folder, "offload folder "
                        + folder + " holds an offload index (" + INDEX + ") Ferry did not write, " + names.size()
                        + " file(s): " + sample() + "; Ferry cannot tell which checkpoint it was made from and "
                        + "does not write into it. Choose an empty or new folder, or allow Ferry to rewrite this one "
                        + "(--overwrite-offload-dir, Options.withOverwriteOffloadDir(true))");
                case OTHER -> new OffloadFolderRefusedException(folder, Files.isDirectory(folder)
                        ? "offload folder " + folder + " is not empty and is not an offload folder: it holds "
                        + names.size() + " file(s): " + sample() + "; Ferry writes only into an empty folder, one it "
                        + "made (with " + OffloadMarker.NAME + "), or an offload folder it is allowed to overwrite"
                        : "offload folder " + folder + " exists and is not a folder");
            };
        }

        private String sample() {
            return names.size() <= 6 ? names.toString()
                    : names.subList(0, 6).toString().replace("]", ", ... (" + (names.size() - 6) + " more)]");
        }
    }

    /** Reads what {@code folder} holds, touching nothing. */
    static Contents inspect(Path folder) {
        if (!Files.exists(folder, java.nio.file.LinkOption.NOFOLLOW_LINKS) && !Files.isSymbolicLink(folder)) {
            return new Contents(folder, Kind.MISSING, List.of(), null);
        }
        if (!Files.isDirectory(folder)) {
            return new Contents(folder, Kind.OTHER, List.of(), null);
        }
        List<String> names;
        try (java.util.stream.Stream<Path> s = Files.list(folder)) {
            names = s.map(p -> p.getFileName().toString())
                    .filter(n -> !n.equals(FolderLock.NAME) && !n.equals(OffloadMarker.PARTIAL))
                    .sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list offload folder " + folder + ": " + IoErrors.reason(e), e);
        }
        if (names.isEmpty()) {
            return new Contents(folder, Kind.EMPTY, names, null);
        }
        if (names.contains(OffloadMarker.NAME)) {
            OffloadMarker marker = OffloadMarker.read(folder);
            if (marker != null) {
                checkIndexNames(folder);
                return new Contents(folder, Kind.FERRY, names, marker);
            }
            return new Contents(folder, Kind.OTHER, names, null);
        }
        if (names.contains(INDEX)) {
            checkIndexNames(folder);
            return new Contents(folder, Kind.FOREIGN_INDEX, names, null);
        }
        return new Contents(folder, Kind.OTHER, names, null);
    }

    /**
     * Refuses the folder, untouched, when its index names a tensor whose {@code .dat} would not be a plain file of
     * the folder, or is there as a link, FIFO or folder: Ferry would otherwise read through it or replace it. An
     * index that is not a readable JSON object is left for {@link #open} and {@link #check} to report.
     */
    private static void checkIndexNames(Path folder) {
        Path index = folder.resolve(INDEX);
        FileStamp stamp = FileStamp.of(index);
        if (stamp == null || !stamp.regular() || stamp.size() > 256L << 20) {
            return;
        }
        JsonNode root;
        try {
            root = Json.MAPPER.readTree(index.toFile());
        } catch (IOException e) {
            return;
        }
        if (root == null || !root.isObject()) {
            return;
        }
        for (java.util.Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            JsonNode entry = root.get(key);
            if (entry.hasNonNull("safetensors_file")) {
                continue; // confined when opened: it must resolve inside the folder or the checkpoint given
            }
            String why = OffloadMarker.notALayoutName(key + ".dat");
            if (why == null) {
                FileStamp dat = FileStamp.of(folder.resolve(key + ".dat"));
                if (dat != null && !dat.regular()) {
                    why = "is " + dat.kind() + " in the folder" + linkTarget(folder.resolve(key + ".dat"))
                            + ", not a regular file";
                }
            }
            if (why != null) {
                throw new OffloadFolderRefusedException(folder, "offload folder " + folder + ": " + INDEX + " entry '"
                        + OffloadMarker.printable(key) + "' names " + OffloadMarker.printable(key + ".dat") + ", which "
                        + why + "; Ferry changes nothing in the folder (remove it, or choose another folder)");
            }
        }
    }

    /** A folder {@link #openFor} made ready: reused as it was, or (re)written. */
    public record Prepared(OffloadFolder folder, boolean reused, String reason) {
    }

    /**
     * Opens {@code dir} as the offload folder of a model loaded from {@code checkpointFiles}, writing it first
     * when needed, under the folder's lock (so several processes sharing one folder write it once and the rest
     * reuse it):
     * <ul>
     * <li>a new or empty folder is written ({@code fill} puts every tensor);</li>
     * <li>a folder Ferry made is reused only when its marker is complete, records exactly the fingerprint of
     * {@code checkpointFiles} (size, modification and inode change time, inode number, header hash of each: an
     * in-place rewrite with the modification time set back is seen), every file it wrote still has the size, times
     * and inode it recorded, and its index matches {@code expected}; otherwise it is rewritten;</li>
     * <li>an offload folder Ferry did not make is rewritten only with {@code overwrite}, else refused;</li>
     * <li>anything else is refused ({@link OffloadFolderRefusedException}), nothing in it touched.</li>
     * </ul>
     *
     * @param checkpointFiles the safetensors files the tensors come from; {@code null} when they come from
     *                        elsewhere (then the folder is always rewritten, never trusted)
     */
    public static Prepared openFor(Path dir, Map<String, TensorSpec> expected, List<Path> checkpointFiles,
            boolean overwrite, java.util.function.Consumer<Writer> fill) {
        Contents before = inspect(dir);
        OffloadFolderRefusedException refused = before.refusal(overwrite);
        if (refused != null) {
            throw refused;
        }
        Path real = createFolder(dir);
        try (FolderLock lock = FolderLock.acquireOrShare(real)) {
            Contents now = inspect(real);
            refused = now.refusal(overwrite);
            if (refused != null) {
                throw refused;
            }
            String why = now.kind() == Kind.FERRY
                    ? reuseProblem(real, now.marker(), expected, checkpointFiles)
                    : now.kind() == Kind.FOREIGN_INDEX ? "overwriting an offload folder Ferry did not write" : "new";
            if (why == null) {
                LOG.info("reusing offload folder {}{}", real, lock.shared() ? " (read-only)" : "");
                return new Prepared(open(real, folders(checkpointFiles)), true, "made from the same checkpoint");
            }
            if (lock.shared()) {
                throw new OffloadFolderRefusedException(real, "offload folder " + real + " cannot be written (its lock "
                        + FolderLock.NAME + " cannot be opened for writing: a read-only folder or file system) and "
                        + "cannot be reused as it is: " + why + "; make it writable, or choose another folder");
            }
            if (now.kind() != Kind.EMPTY && now.kind() != Kind.MISSING) {
                LOG.warn("rewriting offload folder {}: {}", real, why);
            }
            try (Writer w = new Writer(real, now, checkpointFiles, lock)) {
                fill.accept(w);
                return new Prepared(w.commit(), false, why);
            }
        }
    }

    /** Why a folder Ferry made cannot be reused for {@code expected} from {@code checkpointFiles}; null if it can. */
    static String reuseProblem(Path folder, OffloadMarker marker, Map<String, TensorSpec> expected,
            List<Path> checkpointFiles) {
        if (marker.state != OffloadMarker.State.COMPLETE) {
            return "a previous write did not finish";
        }
        if (checkpointFiles == null || !marker.sourceKnown) {
            return "the weights do not come only from checkpoint files, so the folder cannot be checked";
        }
        Map<String, OffloadMarker.SourceFile> now = OffloadMarker.fingerprint(checkpointFiles);
        if (!new TreeMap<>(now).equals(marker.checkpoint)) {
            return "made from another checkpoint, or the checkpoint changed since (size, times, inode or header of "
                    + describeDifference(marker.checkpoint, now) + ")";
        }
        for (Map.Entry<String, OffloadMarker.FileRecord> f : marker.files.entrySet()) {
            if (!f.getValue().matches(folder.resolve(f.getKey()))) {
                return f.getKey() + " changed since Ferry wrote it";
            }
        }
        Staleness s = check(folder, expected, folders(checkpointFiles));
        if (s.isStale()) {
            return s.describe();
        }
        return null;
    }

    /** The folders {@code files} lie in (real paths): where a folder made from them may point. */
    private static List<Path> folders(Collection<Path> files) {
        if (files == null) {
            return List.of();
        }
        java.util.Set<Path> out = new java.util.LinkedHashSet<>();
        for (Path f : files) {
            try {
                out.add(f.toRealPath().getParent());
            } catch (IOException e) {
                // a source that is gone holds nothing an entry could point to
            }
        }
        return List.copyOf(out);
    }

    private static String describeDifference(Map<String, OffloadMarker.SourceFile> was,
            Map<String, OffloadMarker.SourceFile> now) {
        java.util.Set<String> names = new java.util.TreeSet<>(was.keySet());
        names.addAll(now.keySet());
        names.removeIf(n -> java.util.Objects.equals(was.get(n), now.get(n)));
        return names.toString();
    }

    private static Path createFolder(Path dir) {
        try {
            Files.createDirectories(dir);
            return dir.toRealPath();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create offload folder " + dir + ": " + IoErrors.reason(e), e);
        }
    }

    // ------------------------------------------------------------------ writing

    /**
     * Writes {@code keys} of {@code source} as {@code .dat} files and returns the folder, opened. The folder must
     * be new, empty or Ferry's own.
     */
    public static OffloadFolder write(Path folder, WeightsStore source, Collection<String> keys) {
        try (Writer w = writer(folder)) {
            w.plan(keys);
            for (String k : keys) {
                w.putFrom(source, k);
            }
            return w.commit();
        }
    }

    /**
     * Starts a clean rewrite of {@code folder}, which must be new, empty or made by Ferry (else an
     * {@link OffloadFolderRefusedException}, nothing touched). The writer holds the folder's lock until
     * {@link Writer#commit} or {@link Writer#close}; the folder does not look complete until the commit.
     */
    public static Writer writer(Path folder) {
        return writer(folder, false);
    }

    /** {@link #writer(Path)}; with {@code overwrite}, an offload folder Ferry did not make may be rewritten. */
    public static Writer writer(Path folder, boolean overwrite) {
        OffloadFolderRefusedException refused = inspect(folder).refusal(overwrite);
        if (refused != null) {
            throw refused;
        }
        Path real = createFolder(folder);
        FolderLock lock = FolderLock.acquire(real);
        try {
            Contents now = inspect(real);
            refused = now.refusal(overwrite);
            if (refused != null) {
                throw refused;
            }
            return new Writer(real, now, null, lock);
        } catch (RuntimeException e) {
            lock.close();
            throw e;
        }
    }

    /**
     * Writes an offload folder under its lock. Before a file is created its name is claimed in Ferry's marker
     * ({@code ferry-offload.json}, state {@code writing}); each file is written to a temporary name created new
     * (never through a link, never truncating a file) and renamed over its final name, so a reader of the
     * folder never maps a file being written. {@link #commit} removes the files of the previous write that this
     * one no longer needs (only files the marker lists, and only while they are as Ferry left them), writes
     * {@code index.json}, then marks the folder complete with the checkpoint's fingerprint and each file's size,
     * time and CRC32C. A writer not committed leaves a folder that is never taken as complete.
     */
    public static final class Writer implements AutoCloseable {

        private final Path folder;
        private final FolderLock lock;
        /** Names the previous marker listed (Ferry's from before), with their records. */
        private final Map<String, OffloadMarker.FileRecord> previousRecords;
        private final java.util.Set<String> previouslyOwned;
        /** Files of an overwritten foreign offload folder that may be replaced (by rename), never deleted. */
        private final java.util.Set<String> replaceable;
        private final List<Path> checkpointFiles;
        private final java.util.Set<Path> referenced = new java.util.LinkedHashSet<>();
        private final java.util.Set<String> claimed = new java.util.TreeSet<>();
        /** The complete size of each claimed .dat, where known: what a leftover must measure to be Ferry's. */
        private final Map<String, Long> claimedSizes = new TreeMap<>();
        /**
         * The size Ferry's layout gives each file of the previous write: from its claims and from its index (when
         * that index is Ferry's, as it left it). A file is removed only at that size.
         */
        private final Map<String, Long> previousSizes;
        private final Map<String, OffloadMarker.FileRecord> records = new TreeMap<>();
        private final Map<String, ObjectNode> index = new LinkedHashMap<>();
        private final Map<String, OffloadMarker.SourceFile> fingerprint;
        private boolean committed;
        private boolean closed;

        private Writer(Path folder, Contents contents, List<Path> checkpointFiles, FolderLock lock) {
            this.folder = folder;
            this.lock = lock;
            this.checkpointFiles = checkpointFiles;
            OffloadMarker previous = contents.marker();
            this.previousRecords = previous == null ? Map.of() : previous.files;
            this.previouslyOwned = previous == null ? java.util.Set.of() : previous.owned();
            this.previousSizes = previous == null ? Map.of()
                    : layoutSizes(folder, previous, previousRecords.get(INDEX));
            this.replaceable = contents.kind() == Kind.FOREIGN_INDEX ? new java.util.TreeSet<>(contents.names())
                    : java.util.Set.of();
            // the fingerprint is taken before any byte is read, so a checkpoint changed during the write is
            // seen as changed by the next load
            this.fingerprint = checkpointFiles == null ? new LinkedHashMap<>()
                    : new LinkedHashMap<>(OffloadMarker.fingerprint(checkpointFiles));
            claimed.addAll(previouslyOwned);
            claimedSizes.putAll(previousSizes);
            claimed.add(INDEX);
            claimed.add(partial(INDEX));
            if (!replaceable.contains(INDEX) && !previouslyOwned.contains(INDEX)
                    && Files.exists(folder.resolve(INDEX), java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                throw new OffloadFolderRefusedException(folder, "offload folder " + folder + " holds an " + INDEX
                        + " that " + OffloadMarker.NAME + " does not list; Ferry does not replace it");
            }
            writeMarker(OffloadMarker.State.WRITING);
            // Ferry's own previous index goes first, so that the folder does not look complete to anyone
            Path oldIndex = folder.resolve(INDEX);
            OffloadMarker.FileRecord rec = previousRecords.get(INDEX);
            if (rec != null && rec.asLeft(oldIndex)) {
                try {
                    Files.delete(oldIndex);
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot remove the previous " + oldIndex, e);
                }
            }
        }

        private static String partial(String name) {
            return OffloadMarker.partial(name);
        }

        /** The previous write's claimed sizes, plus the size of each {@code .dat} its own index describes. */
        private static Map<String, Long> layoutSizes(Path folder, OffloadMarker previous, OffloadMarker.FileRecord index) {
            Map<String, Long> sizes = new TreeMap<>(previous.claimedSizes);
            Path file = folder.resolve(INDEX);
            if (index == null || !index.asLeft(file)) {
                return sizes;
            }
            JsonNode root;
            try {
                root = readIndex(file);
            } catch (RuntimeException e) {
                return sizes;
            }
            for (Map.Entry<String, JsonNode> e : root.properties()) {
                String name = e.getKey() + ".dat";
                if (!previous.owned().contains(name) || e.getValue().hasNonNull("safetensors_file")) {
                    continue;
                }
                try {
                    Entry entry = parseEntry(folder, file, e.getKey(), e.getValue(), new LinkedHashMap<>(), List.of());
                    sizes.putIfAbsent(name, entry.spec().byteSize());
                } catch (RuntimeException ignored) {
                    // an entry Ferry cannot read gives no size: its file is left in place
                }
            }
            return sizes;
        }

        private void writeMarker(OffloadMarker.State state) {
            Map<String, OffloadMarker.FileRecord> files = new TreeMap<>();
            if (state == OffloadMarker.State.WRITING) {
                // files of the previous write stay listed (they are still Ferry's) until the commit
                files.putAll(previousRecords);
            }
            files.putAll(records);
            Map<String, OffloadMarker.SourceFile> ck = new TreeMap<>(fingerprint);
            for (Path p : referenced) {
                ck.putAll(OffloadMarker.fingerprint(List.of(p)));
            }
            boolean writing = state == OffloadMarker.State.WRITING;
            new OffloadMarker(state, checkpointFiles != null, ck, files, writing ? claimed : java.util.Set.of(),
                    writing ? claimedSizes : Map.of()).write(folder);
        }

        /**
         * Claims the {@code .dat} names of {@code names} at once (one marker write instead of one per tensor). The
         * sizes are not known, so should this write be killed, its files are left in place by the next one; prefer
         * {@link #plan(Map)}.
         */
        public Writer plan(Collection<String> names) {
            Map<String, TensorSpec> unknown = new LinkedHashMap<>();
            names.forEach(n -> unknown.put(n, null));
            return plan(unknown);
        }

        /**
         * Claims the {@code .dat} names of {@code tensors} at once, with the size each file will have, so that the
         * files of a write killed half way can later be recognised as Ferry's by name and size, and removed.
         */
        public Writer plan(Map<String, TensorSpec> tensors) {
            checkWritable();
            boolean added = false;
            for (Map.Entry<String, TensorSpec> t : tensors.entrySet()) {
                added |= claim(datFile(folder, folder, t.getKey()).getFileName().toString(),
                        t.getValue() == null ? null : t.getValue().byteSize());
            }
            if (added) {
                writeMarker(OffloadMarker.State.WRITING);
            }
            return this;
        }

        private boolean claim(String fileName, Long size) {
            if (claimed.contains(fileName)) {
                if (size != null && !size.equals(claimedSizes.put(fileName, size))) {
                    return true;
                }
                return false;
            }
            Path file = folder.resolve(fileName);
            if (!replaceable.contains(fileName) && (Files.exists(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)
                    || Files.isSymbolicLink(file))) {
                throw new OffloadFolderRefusedException(folder, "offload folder " + folder + " holds " + fileName
                        + ", which Ferry did not write; Ferry does not replace it (remove it, or choose another folder)");
            }
            if (Files.exists(folder.resolve(partial(fileName)), java.nio.file.LinkOption.NOFOLLOW_LINKS)
                    || Files.isSymbolicLink(folder.resolve(partial(fileName)))) {
                throw new OffloadFolderRefusedException(folder, "offload folder " + folder + " holds "
                        + partial(fileName) + ", which Ferry did not write; Ferry does not replace it");
            }
            claimed.add(fileName);
            claimed.add(partial(fileName));
            if (size != null) {
                claimedSizes.put(fileName, size);
            } else {
                claimedSizes.remove(fileName);
            }
            return true;
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
            checkWritable();
            Path file = datFile(folder, folder, name);
            String fileName = file.getFileName().toString();
            if (claim(fileName, spec.byteSize())) {
                writeMarker(OffloadMarker.State.WRITING);
            }
            Path tmp = folder.resolve(partial(fileName));
            OffloadMarker.removeLeftover(tmp);
            java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
            long[] written = {0};
            AtomicFiles.writeVia(tmp, file, ch -> {
                for (ByteBuffer c : chunks) {
                    crc.update(c.duplicate());
                    written[0] += AtomicFiles.writeFully(ch, c.duplicate());
                }
                if (written[0] != spec.byteSize()) {
                    throw new IllegalStateException("tensor '" + name + "' " + spec + " should be " + spec.byteSize()
                            + " bytes but its source gave " + written[0]);
                }
            });
            records.put(fileName, OffloadMarker.FileRecord.of(file, String.format("%08x", crc.getValue())));
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
         * Accelerate's form {@code {"safetensors_file", "weight_name", "dtype"}} with the file's dtype. The file
         * is part of what the folder is made from: its fingerprint goes into the marker, and its folder is where
         * entries may point.
         */
        public Writer reference(String name, Path safetensorsFile, String weightName) {
            checkWritable();
            Path file;
            try {
                file = safetensorsFile.toRealPath();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot resolve " + safetensorsFile, e);
            }
            DType dtype;
            try (SafetensorsFile sf = SafetensorsFile.openAnyFormat(file)) {
                if (!sf.contains(weightName)) {
                    throw new WeightsFormatException(file, weightName, "cannot reference it from offload entry '"
                            + name + "': not in the file");
                }
                dtype = sf.spec(weightName).dtype();
            }
            referenced.add(file);
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

        /**
         * Removes the files of the previous write this one no longer needs, writes the index, marks the folder
         * complete, releases the lock and opens the folder.
         */
        public OffloadFolder commit() {
            checkWritable();
            for (String old : previouslyOwned) {
                if (records.containsKey(old) || old.equals(INDEX) || old.equals(partial(INDEX))) {
                    continue;
                }
                removeOwn(old);
            }
            ObjectNode root = Json.MAPPER.createObjectNode();
            index.forEach(root::set);
            byte[] json;
            try {
                json = Json.PYTHON_INDENT_2.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new UncheckedIOException(e);
            }
            Path tmp = folder.resolve(partial(INDEX));
            OffloadMarker.removeLeftover(tmp);
            AtomicFiles.writeVia(tmp, folder.resolve(INDEX), ch -> AtomicFiles.writeFully(ch, ByteBuffer.wrap(json)));
            records.put(INDEX, OffloadMarker.FileRecord.of(folder.resolve(INDEX), null));
            writeMarker(OffloadMarker.State.COMPLETE);
            committed = true;
            close();
            List<Path> sources = new ArrayList<>(referenced);
            if (checkpointFiles != null) {
                sources.addAll(checkpointFiles);
            }
            return open(folder, folders(sources));
        }

        /**
         * Deletes {@code name} only if it is a file of Ferry's layout in the folder (never a link) that is as Ferry
         * left it: of the size the previous write's index or claim gives it (a temporary file: at most that size)
         * and, when the previous marker recorded it, with its recorded size, times and inode.
         */
        private void removeOwn(String name) {
            if (OffloadMarker.notALayoutName(name) != null) {
                return; // read() refuses such markers; kept as a second guard of the one rule
            }
            Path file = folder.resolve(name);
            FileStamp now = FileStamp.of(file);
            if (now == null) {
                return;
            }
            OffloadMarker.FileRecord rec = previousRecords.get(name);
            boolean temporary = name.startsWith(".") && name.endsWith(".partial");
            Long size = previousSizes.get(temporary ? name.substring(1, name.length() - ".partial".length()) : name);
            boolean asLeft = now.regular() && (rec == null || rec.asLeft(file))
                    && size != null && (temporary ? now.size() <= size : now.size() == size);
            if (!asLeft) {
                LOG.warn("{} is listed by {} but is not as Ferry left it (size, time or kind); left in place", file,
                        OffloadMarker.NAME);
                return;
            }
            try {
                Files.delete(file);
            } catch (IOException e) {
                LOG.warn("cannot remove {}: {}", file, e.getMessage());
            }
        }

        /** Releases the folder's lock; without a commit, the folder stays marked as an unfinished write. */
        @Override
        public void close() {
            if (!closed) {
                closed = true;
                lock.close();
            }
        }

        private void checkWritable() {
            if (committed) {
                throw new IllegalStateException("offload folder " + folder + " already committed");
            }
            if (closed) {
                throw new IllegalStateException("offload folder writer for " + folder + " is closed");
            }
        }
    }
}
