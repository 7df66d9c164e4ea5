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
import java.util.concurrent.TimeUnit;

/**
 * {@value #NAME}: the file that makes an offload folder Ferry's. It records
 * <ul>
 * <li>{@code state}: {@code writing} from the moment Ferry starts writing until every file is in place,
 * then {@code complete} (written last, atomically: it is the commit point);</li>
 * <li>{@code claimed}: every name Ferry may create in the folder, recorded <em>before</em> the file is
 * created, so a write killed half way leaves nothing Ferry cannot later recognise as its own;</li>
 * <li>{@code files}: each file Ferry wrote, with its size, modification time and, for a tensor, the CRC32C
 * of its bytes;</li>
 * <li>{@code checkpoint}: the fingerprint of what the folder was made from, per safetensors file (real
 * path, size, modification time, SHA-256 of its header); {@code source_known} is false when the source was
 * not only those files (then the folder is never reused).</li>
 * </ul>
 * Ferry deletes only files this marker lists, and only when they still have the size and time it recorded.
 */
final class OffloadMarker {

    static final String NAME = "ferry-offload.json";
    static final String FORMAT = "ferry-offload-folder/1";
    /** The temporary name the marker is written under before its rename; Ferry's by name. */
    static final String PARTIAL = "." + NAME + ".partial";

    enum State { WRITING, COMPLETE }

    /** A file Ferry wrote; {@code crc32c} is null for files that are not tensors. */
    record FileRecord(long size, long mtimeNanos, String crc32c) {
        boolean matches(Path file) {
            BasicFileAttributes a = attributes(file);
            return a != null && a.isRegularFile() && a.size() == size
                    && a.lastModifiedTime().to(TimeUnit.NANOSECONDS) == mtimeNanos;
        }

        static FileRecord of(Path file, String crc32c) {
            BasicFileAttributes a = attributes(file);
            if (a == null) {
                throw new UncheckedIOException(new NoSuchFileException(file.toString()));
            }
            return new FileRecord(a.size(), a.lastModifiedTime().to(TimeUnit.NANOSECONDS), crc32c);
        }
    }

    /** One checkpoint file as the folder was made from it. */
    record SourceFile(long size, long mtimeNanos, String headerSha256) {
    }

    final State state;
    /** Whether {@link #checkpoint} is all the folder was made from (false: a store that is not files). */
    final boolean sourceKnown;
    /** Real path of each checkpoint file the folder was made from or points into, to its fingerprint. */
    final Map<String, SourceFile> checkpoint;
    final Map<String, FileRecord> files;
    final Set<String> claimed;

    OffloadMarker(State state, boolean sourceKnown, Map<String, SourceFile> checkpoint, Map<String, FileRecord> files,
            Set<String> claimed) {
        this.state = state;
        this.sourceKnown = sourceKnown;
        this.checkpoint = Collections.unmodifiableMap(new TreeMap<>(checkpoint));
        this.files = Collections.unmodifiableMap(new TreeMap<>(files));
        this.claimed = Collections.unmodifiableSet(new TreeSet<>(claimed));
    }

    /** Every name this marker lets Ferry touch: the files it wrote and the names it claimed. */
    Set<String> owned() {
        Set<String> all = new TreeSet<>(claimed);
        all.addAll(files.keySet());
        return all;
    }

    /** The folders the checkpoint files lie in (real paths): index entries may point into them. */
    List<Path> checkpointFolders() {
        return checkpoint.keySet().stream().map(p -> Path.of(p).getParent()).distinct().toList();
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
     * The fingerprint of a checkpoint's files: size, modification time and the SHA-256 of the safetensors
     * header (its 8-byte length and JSON), read from the file, not from memory, so a file replaced since it
     * was opened is seen. Costs one small read per file.
     */
    static Map<String, SourceFile> fingerprint(List<Path> checkpointFiles) {
        Map<String, SourceFile> out = new LinkedHashMap<>();
        for (Path p : checkpointFiles) {
            try {
                Path real = p.toRealPath();
                BasicFileAttributes a = Files.readAttributes(real, BasicFileAttributes.class);
                out.put(real.toString(), new SourceFile(a.size(), a.lastModifiedTime().to(TimeUnit.NANOSECONDS),
                        headerSha256(real, a.size())));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot fingerprint checkpoint file " + p, e);
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
        try {
            State state = State.valueOf(root.path("state").asText("").toUpperCase(java.util.Locale.ROOT));
            boolean sourceKnown = root.path("source_known").asBoolean(false);
            Map<String, SourceFile> checkpoint = new LinkedHashMap<>();
            JsonNode ck = root.get("checkpoint");
            if (ck != null && ck.isObject()) {
                for (Map.Entry<String, JsonNode> e : ck.properties()) {
                    JsonNode v = e.getValue();
                    checkpoint.put(e.getKey(), new SourceFile(v.get("size").asLong(), v.get("mtime_ns").asLong(),
                            v.get("header_sha256").asText()));
                }
            }
            Map<String, FileRecord> files = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : root.path("files").properties()) {
                JsonNode v = e.getValue();
                JsonNode crc = v.get("crc32c");
                files.put(e.getKey(), new FileRecord(v.get("size").asLong(), v.get("mtime_ns").asLong(),
                        crc == null || crc.isNull() ? null : crc.asText()));
            }
            Set<String> claimed = new TreeSet<>();
            root.path("claimed").forEach(n -> claimed.add(n.asText()));
            return new OffloadMarker(state, sourceKnown, checkpoint, files, claimed);
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** Writes the marker atomically (temporary file, then rename). */
    void write(Path folder) {
        ObjectNode root = Json.MAPPER.createObjectNode();
        root.put("format", FORMAT);
        root.put("state", state.name().toLowerCase(java.util.Locale.ROOT));
        root.put("source_known", sourceKnown);
        ObjectNode ck = root.putObject("checkpoint");
        checkpoint.forEach((p, s) -> ck.putObject(p).put("size", s.size()).put("mtime_ns", s.mtimeNanos())
                .put("header_sha256", s.headerSha256()));
        ObjectNode fs = root.putObject("files");
        files.forEach((n, r) -> {
            ObjectNode o = fs.putObject(n).put("size", r.size()).put("mtime_ns", r.mtimeNanos());
            if (r.crc32c() != null) {
                o.put("crc32c", r.crc32c());
            }
        });
        claimed.forEach(root.putArray("claimed")::add);
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
