package dev.ferry.core.weights;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * {@value #NAME}: the file that makes an offload folder Ferry's. It records
 * <ul>
 * <li>{@code state}: {@code writing} from the moment Ferry starts writing until every file is in place,
 * then {@code complete} (written last, atomically: it is the commit point);</li>
 * <li>{@code claimed}: every name Ferry may create in the folder, recorded <em>before</em> the file is
 * created, so a write killed half way leaves nothing Ferry cannot later recognise as its own;</li>
 * <li>{@code claimed_sizes}: the size each claimed {@code .dat} has when complete, where known;</li>
 * <li>{@code files}: each file Ferry wrote, with its size, modification time, inode change time and number
 * and, for a tensor, the CRC32C of its bytes;</li>
 * <li>{@code checkpoint}: the fingerprint of what the folder was made from, per source file (real path, size,
 * modification time, inode change time and number, and for safetensors the SHA-256 of its header);
 * {@code source_known} is false when the source was not only those files (then the folder is never reused).</li>
 * </ul>
 * Nothing in a marker is trusted beyond the folder: every listed name must be a plain file name of Ferry's layout
 * ({@code index.json}, {@code <tensor>.dat}, their {@code .partial} names), and a regular file where it exists, or
 * the folder is refused untouched; the {@code checkpoint} paths are only compared, never used as places to read.
 * Ferry deletes only files this marker lists, and only when they still are as it recorded them.
 */
final class OffloadMarker {

    static final String NAME = "ferry-offload.json";
    static final String FORMAT = "ferry-offload-folder/1";
    /** The temporary name the marker is written under before its rename; Ferry's by name. */
    static final String PARTIAL = "." + NAME + ".partial";

    enum State { WRITING, COMPLETE }

    /**
     * A file Ferry wrote: its size, times and inode as it left them; {@code crc32c} is null for files that are not
     * tensors. Change time and inode are {@link FileStamp#UNKNOWN} in markers written before they were recorded.
     */
    record FileRecord(long size, long mtimeNanos, long ctimeNanos, long inode, String crc32c) {
        /** The file is a regular file, exactly as Ferry left it (size, times, inode). */
        boolean matches(Path file) {
            return stamp().sameAs(FileStamp.of(file));
        }

        /**
         * The file may be deleted as Ferry's own: a regular file (never a link) of the recorded size and time, with
         * the recorded change time and inode where the record has them.
         */
        boolean asLeft(Path file) {
            FileStamp now = FileStamp.of(file);
            return now != null && now.regular() && now.size() == size && now.mtimeNanos() == mtimeNanos
                    && (ctimeNanos == FileStamp.UNKNOWN || now.ctimeNanos() == ctimeNanos)
                    && (inode == FileStamp.UNKNOWN || now.inode() == inode);
        }

        private FileStamp stamp() {
            return new FileStamp(size, mtimeNanos, ctimeNanos, inode, true, false);
        }

        static FileRecord of(Path file, String crc32c) {
            FileStamp s = FileStamp.of(file);
            if (s == null) {
                throw new UncheckedIOException(new NoSuchFileException(file.toString()));
            }
            return new FileRecord(s.size(), s.mtimeNanos(), s.ctimeNanos(), s.inode(), crc32c);
        }
    }

    /**
     * One checkpoint file as the folder was made from it: size, modification time, inode change time and number
     * (what a restored modification time cannot hide) and, for a safetensors file, the SHA-256 of its header.
     */
    record SourceFile(long size, long mtimeNanos, long ctimeNanos, long inode, String headerSha256) {
    }

    final State state;
    /** Whether {@link #checkpoint} is all the folder was made from (false: a store that is not files). */
    final boolean sourceKnown;
    /** Real path of each checkpoint file the folder was made from or points into, to its fingerprint. */
    final Map<String, SourceFile> checkpoint;
    final Map<String, FileRecord> files;
    final Set<String> claimed;
    /** The size each claimed {@code .dat} will have when complete, where the writer knew it when claiming. */
    final Map<String, Long> claimedSizes;

    OffloadMarker(State state, boolean sourceKnown, Map<String, SourceFile> checkpoint, Map<String, FileRecord> files,
            Set<String> claimed, Map<String, Long> claimedSizes) {
        this.state = state;
        this.sourceKnown = sourceKnown;
        this.checkpoint = Collections.unmodifiableMap(new TreeMap<>(checkpoint));
        this.files = Collections.unmodifiableMap(new TreeMap<>(files));
        this.claimed = Collections.unmodifiableSet(new TreeSet<>(claimed));
        this.claimedSizes = Collections.unmodifiableMap(new TreeMap<>(claimedSizes));
    }

    /** Every name this marker lets Ferry touch: the files it wrote and the names it claimed. */
    Set<String> owned() {
        Set<String> all = new TreeSet<>(claimed);
        all.addAll(files.keySet());
        return all;
    }

    // ------------------------------------------------------------------ names

    /** The temporary name a file of Ferry's layout is written under before its rename. */
    static String partial(String name) {
        return "." + name + ".partial";
    }

    /**
     * Why {@code name} cannot be a file of Ferry's layout in an offload folder, or null when it can: a plain file
     * name (no separator, not {@code .} or {@code ..}, not absolute, no NUL) that is {@code index.json}, a tensor's
     * {@code <name>.dat}, or the temporary {@code .<name>.partial} of one of those.
     */
    static String notALayoutName(String name) {
        if (name == null || name.isEmpty()) {
            return "is empty";
        }
        if (name.equals(".") || name.equals("..") || name.indexOf('/') >= 0 || name.indexOf('\\') >= 0
                || name.indexOf('\0') >= 0 || !plainOnThisFileSystem(name)) {
            return "is not a plain file name inside the folder (absolute, a separator, '..' or NUL)";
        }
        String base = name.startsWith(".") && name.endsWith(".partial") && name.length() > ".partial".length() + 1
                ? name.substring(1, name.length() - ".partial".length()) : name;
        if (base.equals(OffloadFolder.INDEX) || (base.endsWith(".dat") && base.length() > ".dat".length())) {
            return null;
        }
        return "is not a name Ferry gives its files (" + OffloadFolder.INDEX + ", <tensor>.dat, or their "
                + ".<name>.partial)";
    }

    private static boolean plainOnThisFileSystem(String name) {
        try {
            Path p = Path.of(name);
            return !p.isAbsolute() && p.getRoot() == null && p.getNameCount() == 1;
        } catch (java.nio.file.InvalidPathException e) {
            return false;
        }
    }

    // ------------------------------------------------------------------ fingerprints

    static BasicFileAttributes attributes(Path file) {
        try {
            return Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the attributes of " + file, e);
        }
    }

    /**
     * The fingerprint of a checkpoint's files: size, modification time, inode change time and number ({@link
     * FileStamp}) and, for a {@code .safetensors} file, the SHA-256 of its header (its 8-byte length and JSON),
     * read from the file, not from memory, so a file replaced since it was opened is seen. Costs a {@code stat}
     * and, for safetensors, one small read per file.
     */
    static Map<String, SourceFile> fingerprint(List<Path> checkpointFiles) {
        Map<String, SourceFile> out = new LinkedHashMap<>();
        for (Path p : checkpointFiles) {
            try {
                Path real = p.toRealPath();
                FileStamp s = FileStamp.of(real);
                if (s == null || !s.regular()) {
                    throw new WeightsFormatException(real, null, "cannot fingerprint checkpoint file: "
                            + (s == null ? "it is gone" : "it is " + s.kind()));
                }
                String header = real.getFileName().toString().endsWith(".safetensors")
                        ? headerSha256(real, s.size()) : null;
                out.put(real.toString(), new SourceFile(s.size(), s.mtimeNanos(), s.ctimeNanos(), s.inode(), header));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot fingerprint checkpoint file " + p + ": " + IoErrors.reason(e), e);
            }
        }
        return out;
    }

    private static String headerSha256(Path file, long size) throws IOException {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            SafetensorsFile.readFully(ch, len, 0);
            long n = len.getLong(0);
            if (size < 8 || n < 0 || n > SafetensorsFile.MAX_HEADER_BYTES || 8 + n > size) {
                throw new WeightsFormatException(file, null, "not a safetensors file: header length field out of range");
            }
            ByteBuffer header = ByteBuffer.allocate((int) n);
            SafetensorsFile.readFully(ch, header, 8);
            sha.update(len.array());
            sha.update(header.array());
        }
        return HexFormat.of().formatHex(sha.digest());
    }

    // ------------------------------------------------------------------ reading and writing

    /**
     * The marker of {@code folder}; null when there is none, or when the file there is not a regular file
     * holding a Ferry marker (then the folder is not Ferry's).
     *
     * @throws OffloadFolderRefusedException when the marker lists a name that is not a file of Ferry's layout
     *                                       inside the folder, or one that exists as a link or other non-regular
     *                                       file: a marker is a claim to delete files, so one that claims
     *                                       anything else makes the whole folder untouchable
     */
    static OffloadMarker read(Path folder) {
        Path file = folder.resolve(NAME);
        BasicFileAttributes a = attributes(file);
        if (a == null || !a.isRegularFile() || a.size() > 64L << 20) {
            return null;
        }
        JsonNode root;
        try {
            root = Json.MAPPER.readTree(file.toFile());
        } catch (IOException e) {
            return null;
        }
        if (root == null || !root.isObject() || !FORMAT.equals(root.path("format").asText(null))) {
            return null;
        }
        OffloadMarker marker;
        try {
            State state = State.valueOf(root.path("state").asText("").toUpperCase(java.util.Locale.ROOT));
            boolean sourceKnown = root.path("source_known").asBoolean(false);
            Map<String, SourceFile> checkpoint = new LinkedHashMap<>();
            JsonNode ck = root.get("checkpoint");
            if (ck != null && ck.isObject()) {
                for (Map.Entry<String, JsonNode> e : ck.properties()) {
                    JsonNode v = e.getValue();
                    JsonNode header = v.get("header_sha256");
                    checkpoint.put(e.getKey(), new SourceFile(v.get("size").asLong(), v.get("mtime_ns").asLong(),
                            optionalLong(v, "ctime_ns"), optionalLong(v, "inode"),
                            header == null || header.isNull() ? null : header.asText()));
                }
            }
            Map<String, FileRecord> files = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : root.path("files").properties()) {
                JsonNode v = e.getValue();
                JsonNode crc = v.get("crc32c");
                files.put(e.getKey(), new FileRecord(v.get("size").asLong(), v.get("mtime_ns").asLong(),
                        optionalLong(v, "ctime_ns"), optionalLong(v, "inode"),
                        crc == null || crc.isNull() ? null : crc.asText()));
            }
            Set<String> claimed = new TreeSet<>();
            root.path("claimed").forEach(n -> claimed.add(n.asText()));
            Map<String, Long> sizes = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : root.path("claimed_sizes").properties()) {
                if (e.getValue().canConvertToLong() && e.getValue().longValue() >= 0) {
                    sizes.put(e.getKey(), e.getValue().longValue());
                }
            }
            marker = new OffloadMarker(state, sourceKnown, checkpoint, files, claimed, sizes);
        } catch (RuntimeException e) {
            return null;
        }
        marker.checkNames(folder);
        return marker;
    }

    private static long optionalLong(JsonNode v, String field) {
        JsonNode n = v.get(field);
        return n == null || !n.canConvertToLong() ? FileStamp.UNKNOWN : n.longValue();
    }

    /** Refuses the folder when any name this marker lists is not a regular file of Ferry's layout in it. */
    private void checkNames(Path folder) {
        for (String field : List.of("claimed", "files")) {
            for (String name : field.equals("claimed") ? claimed : files.keySet()) {
                String why = notALayoutName(name);
                if (why == null) {
                    FileStamp s = FileStamp.of(folder.resolve(name));
                    if (s != null && !s.regular()) {
                        why = "is " + s.kind() + " in the folder, where Ferry only ever writes regular files";
                    }
                }
                if (why != null) {
                    throw new OffloadFolderRefusedException(folder, "offload folder " + folder + ": its " + NAME
                            + " lists '" + printable(name) + "' in \"" + field + "\", which " + why + "; Ferry trusts "
                            + "no such marker and changes nothing in the folder (remove it, or choose another folder)");
                }
            }
        }
    }

    /** A name from a file as it may appear in a message: control characters escaped, at most 200 characters. */
    static String printable(String text) {
        StringBuilder sb = new StringBuilder();
        text.codePoints().limit(200).forEach(c -> {
            if (Character.isISOControl(c)) {
                sb.append(String.format("\\u%04x", c));
            } else {
                sb.appendCodePoint(c);
            }
        });
        return text.codePointCount(0, text.length()) > 200 ? sb + "..." : sb.toString();
    }

    /** Writes the marker atomically (temporary file, then rename). */
    void write(Path folder) {
        ObjectNode root = Json.MAPPER.createObjectNode();
        root.put("format", FORMAT);
        root.put("state", state.name().toLowerCase(java.util.Locale.ROOT));
        root.put("source_known", sourceKnown);
        ObjectNode ck = root.putObject("checkpoint");
        checkpoint.forEach((p, s) -> {
            ObjectNode o = ck.putObject(p).put("size", s.size()).put("mtime_ns", s.mtimeNanos());
            putKnown(o, "ctime_ns", s.ctimeNanos());
            putKnown(o, "inode", s.inode());
            if (s.headerSha256() != null) {
                o.put("header_sha256", s.headerSha256());
            }
        });
        ObjectNode fs = root.putObject("files");
        files.forEach((n, r) -> {
            ObjectNode o = fs.putObject(n).put("size", r.size()).put("mtime_ns", r.mtimeNanos());
            putKnown(o, "ctime_ns", r.ctimeNanos());
            putKnown(o, "inode", r.inode());
            if (r.crc32c() != null) {
                o.put("crc32c", r.crc32c());
            }
        });
        claimed.forEach(root.putArray("claimed")::add);
        if (!claimedSizes.isEmpty()) {
            ObjectNode sizes = root.putObject("claimed_sizes");
            claimedSizes.forEach(sizes::put);
        }
        byte[] json;
        try {
            json = Json.PYTHON_INDENT_2.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
        Path tmp = folder.resolve(PARTIAL);
        removeLeftover(tmp);
        AtomicFiles.writeVia(tmp, folder.resolve(NAME), ch -> AtomicFiles.writeFully(ch, ByteBuffer.wrap(json)));
    }

    private static void putKnown(ObjectNode o, String field, long value) {
        if (value != FileStamp.UNKNOWN) {
            o.put(field, value);
        }
    }

    /**
     * Removes a temporary file a killed write of Ferry's left at one of its own names; a link planted there is
     * an error, never followed nor removed.
     */
    static void removeLeftover(Path tmp) {
        BasicFileAttributes a = attributes(tmp);
        if (a == null) {
            return;
        }
        if (!a.isRegularFile()) {
            throw new IllegalStateException(tmp + " is not a regular file (a link or a folder where Ferry writes "
                    + "its temporary files); remove it or choose another offload folder");
        }
        try {
            Files.delete(tmp);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the unfinished " + tmp, e);
        }
    }
}
