package dev.ferry.core.weights;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One safetensors file, memory-mapped read-only. The layout is an 8-byte little-endian header length N,
 * N bytes of UTF-8 JSON (name to {@code dtype}, {@code shape}, {@code data_offsets}, plus an optional
 * {@code __metadata__} string map), then the data section the offsets are relative to.
 *
 * <p>The whole header is validated when the file is opened, before any tensor is used, with the rules of
 * the reference implementation: the header length fits in the file and under 100 MB, the header is UTF-8
 * JSON starting with <code>{</code> with no duplicate keys, every dtype is known, shape &times; dtype size
 * equals the byte range, and the ranges tile the data section exactly (sorted by offset, each starts where
 * the previous ends, the last ends at the end of the file: no overlaps, no holes, no trailing bytes).
 *
 * <p>Tensor bytes are never read at open. {@link #bytes} reads just that tensor's range into memory Ferry owns and
 * {@link #read} into a buffer the caller owns, by positional reads: a file truncated meanwhile is a
 * {@link WeightsFileChangedException} naming it, never a native read past the end of a mapping (SIGBUS). With
 * {@link FileAccess#MAP_IN_PLACE_UNSAFE} {@link #bytes} maps the range instead (zero copy, at that risk). A tensor over
 * 2 GiB cannot be one {@link ByteBuffer}; read it with {@link #chunks}.
 */
public final class SafetensorsFile implements WeightsStore {

    /** The largest header accepted, the reference implementation's limit. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    /** The largest chunk {@link #chunks(String)} gives: 2 GiB less 8, a multiple of every dtype size. */
    public static final int MAX_CHUNK_BYTES = Integer.MAX_VALUE & ~7;

    private static final Logger LOG = LoggerFactory.getLogger(SafetensorsFile.class);
    private static final String METADATA_KEY = "__metadata__";

    /**
     * One tensor of the header. {@code begin} and {@code end} are the {@code data_offsets}, relative to the
     * data section; {@code fileOffset} is where its bytes start in the file.
     */
    public record Entry(String name, TensorSpec spec, long begin, long end, long fileOffset) {
        public long byteSize() {
            return end - begin;
        }
    }

    private final Path path;
    /** Reopened (same file, checked) if an interrupt on some reading thread closed it: NIO channels are interruptible. */
    private volatile FileChannel channel;
    private final long dataStart;
    private final Map<String, String> metadata;
    private final Map<String, Entry> entries;
    /** One mapping per tensor, made on first use: repeated reads (offload hooks) add no new mappings. */
    private final Map<String, ByteBuffer> mapped = new java.util.concurrent.ConcurrentHashMap<>();
    /** Size, modification time and identity of the file when it was opened: checked before each read. */
    private final long openedSize;
    private final FileTime openedTime;
    private final Object openedKey;
    private volatile boolean closed;
    private final FileAccess access;

    private SafetensorsFile(Path path, FileChannel channel, long dataStart, Map<String, String> metadata,
            Map<String, Entry> entries, long size, FileTime time, Object key) {
        this.access = FileAccess.current();
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.metadata = metadata;
        this.entries = entries;
        this.openedSize = size;
        this.openedTime = time;
        this.openedKey = key;
    }

    /**
     * Opens and validates a checkpoint file. Its {@code __metadata__.format} must be {@code pt}, as
     * Accelerate's {@code load_state_dict} requires: a file without {@code __metadata__} is taken as
     * {@code pt} (with a warning), a {@code __metadata__} without a {@code format}, or with {@code tf},
     * {@code flax} or anything else, is rejected.
     */
    public static SafetensorsFile open(Path path) {
        return open(path, true);
    }

    /**
     * Opens and validates a file whatever its {@code __metadata__.format}, as {@code safe_open} does; used
     * for offload-index entries that point into a safetensors file.
     */
    public static SafetensorsFile openAnyFormat(Path path) {
        return open(path, false);
    }

    private static SafetensorsFile open(Path path, boolean requirePt) {
        String why = dev.ferry.core.io.RegularFiles.problem(path);
        if (why != null && Files.exists(path)) {
            throw new WeightsFormatException(path, null, why); // a FIFO would block the open forever
        }
        FileChannel channel;
        try {
            channel = FileChannel.open(path, StandardOpenOption.READ);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open safetensors file " + path, e);
        }
        try {
            SafetensorsFile file = parse(path, channel, requirePt);
            LOG.debug("opened {}: {} tensors", path, file.entries.size());
            return file;
        } catch (RuntimeException | Error e) {
            closeQuietly(channel, e);
            throw e;
        }
    }

    private static SafetensorsFile parse(Path path, FileChannel channel, boolean requirePt) {
        long fileSize;
        BasicFileAttributes attributes;
        ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        try {
            attributes = Files.readAttributes(path, BasicFileAttributes.class);
            fileSize = channel.size();
            if (fileSize < 8) {
                throw new WeightsFormatException(path, null, "file is " + fileSize
                        + " bytes, shorter than the 8-byte header length that starts a safetensors file");
            }
            readFully(channel, lengthBytes, 0);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path, e);
        }
        long headerLength = lengthBytes.getLong(0);
        // the field's value is not printed when it is absurd: the file may be anything (a password file, zeros)
        if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
            throw new WeightsFormatException(path, null, "not a safetensors file: header length field out of range "
                    + "(a header is at most " + MAX_HEADER_BYTES + " bytes; the file is " + fileSize + " bytes)");
        }
        if (8 + headerLength > fileSize) {
            throw new WeightsFormatException(path, null, "header length " + headerLength
                    + " runs past the end of the file (" + fileSize + " bytes, so at most " + (fileSize - 8)
                    + " header bytes); the file is truncated or not safetensors");
        }
        ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
        try {
            readFully(channel, headerBytes, 8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path, e);
        }
        headerBytes.flip();
        String header;
        try {
            CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(headerBytes);
            header = chars.toString();
        } catch (CharacterCodingException e) {
            throw new WeightsFormatException(path, null, "header is not valid UTF-8", e);
        }
        if (!header.startsWith("{")) {
            throw new WeightsFormatException(path, null, "not a safetensors file: header does not start with '{'");
        }
        JsonNode root;
        try {
            root = Json.MAPPER.readTree(header);
        } catch (JsonProcessingException e) {
            throw new WeightsFormatException(path, null, "header is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new WeightsFormatException(path, null, "header is not a JSON object");
        }
        long dataStart = 8 + headerLength;
        long dataLength = fileSize - dataStart;

        Map<String, String> metadata = null;
        List<Entry> list = new ArrayList<>();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            if (field.getKey().equals(METADATA_KEY)) {
                metadata = readMetadata(path, field.getValue());
            } else {
                list.add(readEntry(path, field.getKey(), field.getValue(), dataStart, dataLength));
            }
        }
        checkTiling(path, list, dataLength);
        if (requirePt) {
            checkFormat(path, metadata);
        }
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (Entry e : list) {
            entries.put(e.name(), e);
        }
        return new SafetensorsFile(path, channel, dataStart,
                metadata == null ? Map.of() : Collections.unmodifiableMap(metadata),
                Collections.unmodifiableMap(entries), fileSize, attributes.lastModifiedTime(), attributes.fileKey());
    }

    private static Map<String, String> readMetadata(Path path, JsonNode node) {
        if (!node.isObject()) {
            throw new WeightsFormatException(path, null, "__metadata__ must be an object of strings, got "
                    + node.getNodeType());
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> f : node.properties()) {
            if (!f.getValue().isTextual()) {
                throw new WeightsFormatException(path, null, "__metadata__ value of '" + f.getKey()
                        + "' must be a string, got " + f.getValue().getNodeType());
            }
            out.put(f.getKey(), f.getValue().textValue());
        }
        return out;
    }

    private static void checkFormat(Path path, Map<String, String> metadata) {
        if (metadata == null) {
            LOG.warn("{} has no __metadata__; taking it as format 'pt' as Accelerate does", path);
            return;
        }
        String format = metadata.get("format");
        if (format == null || !(format.equals("pt") || format.equals("tf") || format.equals("flax"))) {
            throw new WeightsFormatException(path, null, "__metadata__ has no valid format (got "
                    + (format == null ? "none" : "'" + format + "'")
                    + ", expected 'pt'); save the model with save_pretrained");
        }
        if (!format.equals("pt")) {
            throw new WeightsFormatException(path, null, "saved with format '" + format
                    + "', expected 'pt' (PyTorch layout), as Accelerate requires");
        }
    }

    private static Entry readEntry(Path path, String name, JsonNode node, long dataStart, long dataLength) {
        if (!node.isObject()) {
            throw new WeightsFormatException(path, name, "header entry must be an object with dtype, shape and "
                    + "data_offsets, got " + node.getNodeType());
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new WeightsFormatException(path, name, "missing or non-string dtype");
        }
        DType dtype;
        try {
            dtype = DType.fromSafetensors(dtypeNode.textValue());
        } catch (IllegalArgumentException e) {
            throw new WeightsFormatException(path, name, e.getMessage(), e);
        }
        long[] shape = readLongs(path, name, node.get("shape"), "shape", -1);
        long[] offsets = readLongs(path, name, node.get("data_offsets"), "data_offsets", 2);
        long begin = offsets[0];
        long end = offsets[1];
        if (end < begin) {
            throw new WeightsFormatException(path, name, "data_offsets [" + begin + ", " + end
                    + "] end before they begin");
        }
        if (end > dataLength) {
            throw new WeightsFormatException(path, name, "data_offsets [" + begin + ", " + end
                    + "] run past the end of the data section (" + dataLength
                    + " bytes); the file is truncated or the header is wrong");
        }
        TensorSpec spec = new TensorSpec(shape, dtype);
        long expected;
        try {
            expected = spec.byteSize();
        } catch (ArithmeticException e) {
            throw new WeightsFormatException(path, name, "shape " + spec.shapeString() + " of " + dtype.safetensorsName()
                    + " overflows a 64-bit byte count", e);
        }
        if (expected != end - begin) {
            throw new WeightsFormatException(path, name, "shape " + spec.shapeString() + " of "
                    + dtype.safetensorsName() + " (" + dtype.byteSize() + " bytes each) needs " + expected
                    + " bytes, but data_offsets [" + begin + ", " + end + "] span " + (end - begin));
        }
        return new Entry(name, spec, begin, end, dataStart + begin);
    }

    private static long[] readLongs(Path path, String name, JsonNode node, String field, int exactLength) {
        if (node == null || !node.isArray()) {
            throw new WeightsFormatException(path, name, "missing or non-array " + field);
        }
        if (exactLength >= 0 && node.size() != exactLength) {
            throw new WeightsFormatException(path, name, field + " must have " + exactLength + " values, got "
                    + node.size());
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new WeightsFormatException(path, name, field + " must hold non-negative integers, got " + node);
            }
            out[i] = v.longValue();
        }
        return out;
    }

    /** The ranges must cover the data section exactly: sorted by offset, each starts where the last ends. */
    private static void checkTiling(Path path, List<Entry> list, long dataLength) {
        List<Entry> sorted = new ArrayList<>(list);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long expectedBegin = 0;
        Entry previous = null;
        for (Entry e : sorted) {
            if (e.begin() < expectedBegin) {
                throw new WeightsFormatException(path, e.name(), "data_offsets [" + e.begin() + ", " + e.end()
                        + "] overlap tensor '" + previous.name() + "' [" + previous.begin() + ", " + previous.end()
                        + "]");
            }
            if (e.begin() > expectedBegin) {
                throw new WeightsFormatException(path, e.name(), "data_offsets [" + e.begin() + ", " + e.end()
                        + "] leave a hole of " + (e.begin() - expectedBegin) + " bytes after "
                        + (previous == null ? "the start of the data section" : "tensor '" + previous.name() + "'")
                        + "; safetensors requires the tensors to cover the data section without holes");
            }
            expectedBegin = e.end();
            previous = e;
        }
        if (expectedBegin != dataLength) {
            throw new WeightsFormatException(path, null, "the tensors cover " + expectedBegin
                    + " bytes of the data section but it is " + dataLength
                    + " bytes; safetensors requires the last tensor to end at the end of the file");
        }
    }

    static void readFully(FileChannel ch, ByteBuffer dst, long position) throws IOException {
        long pos = position;
        while (dst.hasRemaining()) {
            int n = ch.read(dst, pos);
            if (n < 0) {
                throw new IOException("unexpected end of file at " + pos);
            }
            pos += n;
        }
    }

    private static void closeQuietly(FileChannel channel, Throwable primary) {
        try {
            channel.close();
        } catch (IOException e) {
            primary.addSuppressed(e);
        }
    }

    public Path path() {
        return path;
    }

    /** The {@code __metadata__} map; empty when the header has none. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Absolute file offset of the data section (8 + header length). */
    public long dataStart() {
        return dataStart;
    }

    /** Tensor names in the order of their bytes in the file. */
    @Override
    public Set<String> keys() {
        return entries.keySet();
    }

    @Override
    public boolean contains(String key) {
        return entries.containsKey(key);
    }

    /** All header entries in the order of their bytes in the file. */
    public Collection<Entry> entries() {
        return entries.values();
    }

    public Entry entry(String key) {
        Entry e = entries.get(key);
        if (e == null) {
            throw new NoSuchElementException("no tensor '" + key + "' in " + path);
        }
        return e;
    }

    @Override
    public TensorSpec spec(String key) {
        return entry(key).spec();
    }

    /**
     * A read-only, little-endian copy of the tensor's bytes read from the file now (a zero-copy view of a mapping
     * made on first use and shared, with {@link FileAccess#MAP_IN_PLACE_UNSAFE}). An {@link IllegalStateException} for
     * a tensor over 2 GiB: use {@link #chunks(String)}.
     *
     * @throws WeightsFileChangedException when the file is shorter than its header says
     */
    @Override
    public ByteBuffer bytes(String key) {
        Entry e = entry(key);
        if (e.byteSize() > Integer.MAX_VALUE) {
            throw new IllegalStateException("tensor '" + key + "' in " + path + " is " + e.byteSize()
                    + " bytes, over the 2 GiB one ByteBuffer can hold; read it with chunks(key)");
        }
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
        checkUnchanged();
        if (access == FileAccess.READ) {
            return FileReads.readOwned(channel(), path, key, e.fileOffset(), (int) e.byteSize());
        }
        return mapped.computeIfAbsent(key, k -> map(e.fileOffset(), e.byteSize()))
                .duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Reads the tensor's bytes into {@code dst} by positional reads (whatever the {@link FileAccess}). */
    @Override
    public void read(String key, ByteBuffer dst) {
        Entry e = entry(key);
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
        if (dst.remaining() < e.byteSize()) {
            throw new IllegalArgumentException("tensor '" + key + "' is " + e.byteSize() + " bytes; the buffer has room "
                    + "for " + dst.remaining());
        }
        checkUnchanged();
        int n = (int) e.byteSize();
        FileReads.readFully(channel(), path, key, e.fileOffset(), dst.slice(dst.position(), n));
        dst.position(dst.position() + n);
    }

    @Override
    public boolean streamsFromFile(String key) {
        return access == FileAccess.READ && entry(key).byteSize() <= Integer.MAX_VALUE;
    }

    /** The tensor's bytes in consecutive read-only little-endian views of at most {@link #MAX_CHUNK_BYTES}. */
    public List<ByteBuffer> chunks(String key) {
        return chunks(key, MAX_CHUNK_BYTES);
    }

    @Override
    public List<ByteBuffer> chunks(String key, int maxChunkBytes) {
        Entry e = entry(key);
        checkUnchanged();
        if (access == FileAccess.READ) {
            return WeightsStore.chunked(e.byteSize(), maxChunkBytes,
                    (pos, len) -> FileReads.readOwned(channel(), path, key, e.fileOffset() + pos, (int) len));
        }
        return WeightsStore.chunked(e.byteSize(), maxChunkBytes, (pos, len) -> map(e.fileOffset() + pos, len));
    }

    /**
     * The file must still be the one opened, with the size and modification time it had: a checkpoint truncated,
     * rewritten or replaced underneath is an {@link IllegalStateException} naming the file and both sizes, before
     * any byte of it is read (reading a mapping past a truncated end would kill the process with SIGBUS). One
     * {@code stat} per call. A change between this check and the read itself is not caught.
     */
    public void checkUnchanged() {
        long size;
        FileTime time;
        Object key;
        try {
            BasicFileAttributes a = Files.readAttributes(path, BasicFileAttributes.class);
            size = a.size();
            time = a.lastModifiedTime();
            key = a.fileKey();
        } catch (java.nio.file.NoSuchFileException e) {
            throw new IllegalStateException("checkpoint file " + path + " was removed since it was opened ("
                    + openedSize + " bytes then); load the model again");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot check " + path, e);
        }
        if (size != openedSize || !time.equals(openedTime) || !java.util.Objects.equals(key, openedKey)) {
            throw new IllegalStateException("checkpoint file " + path + " changed since it was opened: it was "
                    + openedSize + " bytes (modified " + openedTime + "), it is " + size + " bytes (modified " + time
                    + (java.util.Objects.equals(key, openedKey) ? "" : ", another file at that path")
                    + "); its tensors can no longer be read safely, load the model again");
        }
    }

    /**
     * The open channel; a new one when an interrupt closed it (an interrupt arriving while some thread reads closes a
     * FileChannel for every thread). The file must still be the one opened ({@link #checkUnchanged}).
     */
    private FileChannel channel() {
        FileChannel c = channel;
        if (c.isOpen()) {
            return c;
        }
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException(path + " is closed");
            }
            if (!channel.isOpen()) {
                checkUnchanged();
                try {
                    channel = FileChannel.open(path, StandardOpenOption.READ);
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot reopen " + path + ": " + IoErrors.reason(e), e);
                }
                LOG.debug("reopened {} after an interrupt closed its channel", path);
            }
            return channel;
        }
    }

    private ByteBuffer map(long offset, long length) {
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
        if (length == 0) {
            return ByteBuffer.allocateDirect(0).order(ByteOrder.LITTLE_ENDIAN).asReadOnlyBuffer()
                    .order(ByteOrder.LITTLE_ENDIAN);
        }
        return MemoryMapping.map(channel(), path, offset, length);
    }

    /**
     * Closes the file. Views already handed out stay readable until they are garbage collected (the JVM
     * unmaps them then); new calls to {@link #bytes} fail.
     */
    @Override
    public void close() {
        closed = true;
        mapped.clear();
        try {
            channel.close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close " + path, e);
        }
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + path + ", " + entries.size() + " tensors]";
    }
}
