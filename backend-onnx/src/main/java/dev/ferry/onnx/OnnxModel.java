package dev.ferry.onnx;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnsafeByteOperations;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import dev.ferry.core.weights.FileAccess;
import dev.ferry.core.weights.FileReads;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An ONNX model read in Java: the graph, its nodes (with their metadata), initializers, inputs and outputs.
 *
 * <p>The file is read into direct memory Ferry owns (positional reads, not a mapping: ONNX Runtime reading a mapped
 * page of a file truncated meanwhile would kill the JVM with SIGBUS) and parsed with protobuf aliasing, so every
 * initializer's {@code raw_data} is a view of that one copy: {@link #data} hands out direct buffers without copying
 * again, and a multi-gigabyte model never sits on the Java heap. Initializers stored as external data are read from
 * their files when asked for (checked for presence and length when the model is loaded; a file shorter by then is a
 * {@link dev.ferry.core.weights.WeightsFileChangedException}); those in typed fields ({@code float_data}, ...) are
 * encoded little-endian into a direct buffer on request. With {@link FileAccess#MAP_IN_PLACE_UNSAFE} both are mapped
 * instead (zero copy, at that risk).
 */
public final class OnnxModel {

    private static final int MAX_PROTO_BYTES = Integer.MAX_VALUE;

    private final Path file;
    private final Path baseDir;
    private final ModelProto proto;
    private final GraphProto graph;
    private final LinkedHashMap<String, TensorProto> initializers = new LinkedHashMap<>();
    private final Map<String, ValueInfoProto> valueInfos = new HashMap<>();
    private final Map<String, Integer> producers = new HashMap<>();
    private final List<String> inputNames = new ArrayList<>();
    private final List<String> outputNames = new ArrayList<>();
    private final Map<String, ByteBuffer> dataCache = new ConcurrentHashMap<>();

    private OnnxModel(Path file, Path baseDir, ModelProto proto) {
        this.file = file;
        this.baseDir = baseDir;
        this.proto = proto;
        this.graph = proto.getGraph();
        for (TensorProto t : graph.getInitializerList()) {
            initializers.put(t.getName(), t);
        }
        for (ValueInfoProto v : graph.getValueInfoList()) {
            valueInfos.put(v.getName(), v);
        }
        for (ValueInfoProto v : graph.getOutputList()) {
            valueInfos.put(v.getName(), v);
            outputNames.add(v.getName());
        }
        for (ValueInfoProto v : graph.getInputList()) {
            valueInfos.put(v.getName(), v);
            if (!initializers.containsKey(v.getName())) {
                inputNames.add(v.getName());
            }
        }
        for (int i = 0; i < graph.getNodeCount(); i++) {
            for (String out : graph.getNode(i).getOutputList()) {
                if (!out.isEmpty()) {
                    producers.put(out, i);
                }
            }
        }
    }

    /**
     * Loads {@code file}.
     *
     * @throws OnnxModelException.NotOnnx when the file is empty, not a protobuf ModelProto, or has no graph
     * @throws OnnxModelException.Truncated when the file starts as ONNX but ends early
     * @throws OnnxModelException.MissingExternalData when an initializer's external-data file is missing or short
     */
    public static OnnxModel load(Path file) {
        long size;
        ByteBuffer mapped;
        try (FileChannel ch = FileChannel.open(file)) {
            size = ch.size();
            if (size > MAX_PROTO_BYTES) {
                throw new OnnxModelException.NotOnnx(file + " is " + size + " bytes; an ONNX protobuf file holds at "
                        + "most 2 GiB (larger models keep their weights as external data)", null);
            }
            mapped = FileAccess.current() == FileAccess.READ
                    ? FileReads.readOwned(ch, file, null, 0, (int) size)
                    : dev.ferry.core.weights.MemoryMapping.mapRaw(ch, file, 0, size);
        } catch (NoSuchFileException e) {
            throw new UncheckedIOException("no ONNX model at " + file, e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read ONNX model " + file + ": " + e.getMessage(), e);
        }
        Path dir = file.toAbsolutePath().getParent();
        return parse(mapped, file.toString(), file, dir);
    }

    /** Parses a model held in memory; external data, if any, is looked up under {@code baseDir}. */
    public static OnnxModel fromBytes(byte[] bytes, Path baseDir) {
        ByteBuffer direct = ByteBuffer.allocateDirect(bytes.length);
        direct.put(bytes).flip();
        return parse(direct, "<" + bytes.length + " bytes>", null, baseDir);
    }

    private static OnnxModel parse(ByteBuffer buffer, String what, Path file, Path baseDir) {
        if (buffer.remaining() == 0) {
            throw new OnnxModelException.NotOnnx(what + " is empty, not an ONNX model", null);
        }
        // a serialized ModelProto starts with field 1 (ir_version, varint): tag byte 0x08
        boolean looksLikeOnnx = buffer.get(buffer.position()) == 0x08;
        ModelProto proto;
        try {
            CodedInputStream in = UnsafeByteOperations.unsafeWrap(buffer.duplicate()).newCodedInput();
            in.enableAliasing(true);
            in.setSizeLimit(MAX_PROTO_BYTES);
            proto = ModelProto.parseFrom(in);
        } catch (InvalidProtocolBufferException e) {
            String msg = String.valueOf(e.getMessage());
            if (looksLikeOnnx && msg.contains("ended unexpectedly")) {
                throw new OnnxModelException.Truncated(what + " is truncated: it starts as an ONNX model but ends "
                        + "inside a field (" + buffer.remaining() + " bytes read)", e);
            }
            throw new OnnxModelException.NotOnnx(what + " is not an ONNX model (protobuf: " + msg + ")", e);
        } catch (IOException | RuntimeException e) {
            throw new OnnxModelException.NotOnnx(what + " is not an ONNX model: " + e, e);
        }
        if (!proto.hasGraph() || proto.getIrVersion() <= 0) {
            if (looksLikeOnnx && proto.getIrVersion() > 0) {
                throw new OnnxModelException.Truncated(what + " has an ir_version but no graph: truncated?", null);
            }
            throw new OnnxModelException.NotOnnx(what + " is not an ONNX model: no ir_version and graph", null);
        }
        if (proto.getOpsetImportCount() == 0) {
            throw new OnnxModelException.Truncated(what + " has a graph but no opset_import (written after the "
                    + "graph): the file is truncated or incomplete", null);
        }
        OnnxModel m = new OnnxModel(file, baseDir, proto);
        m.checkExternalData(what);
        return m;
    }

    private void checkExternalData(String what) {
        for (TensorProto t : initializers.values()) {
            if (t.getDataLocation() != TensorProto.DataLocation.EXTERNAL) {
                continue;
            }
            ExternalRef ref = externalRef(t);
            if (!Files.isRegularFile(ref.path)) {
                throw new OnnxModelException.MissingExternalData(what + ": initializer '" + printable(t.getName())
                        + "' is stored in external file '" + printable(ref.location) + "', which is missing (looked "
                        + "for " + ref.path + ")");
            }
            try {
                long size = Files.size(ref.path);
                if (size < ref.offset + ref.length) {
                    throw new OnnxModelException.MissingExternalData(what + ": initializer '" + printable(t.getName())
                            + "' needs bytes " + ref.offset + ".." + (ref.offset + ref.length) + " of '"
                            + printable(ref.location) + "', which has only " + size);
                }
            } catch (IOException e) {
                throw new OnnxModelException.MissingExternalData(what + ": cannot read external file "
                        + ref.path + ": " + e.getMessage());
            }
        }
    }

    private record ExternalRef(String location, Path path, long offset, long length) {
    }

    /**
     * Where an initializer's external data lies, confined to the model's folder: the {@code location} must be a
     * relative path that stays inside {@link #baseDir} once normalised, and once symbolic links are followed
     * (when the file exists), else {@link OnnxModelException.ExternalDataOutsideModel}. So a model cannot make
     * Ferry read {@code /etc/passwd} or {@code ../../secret} as weights.
     */
    private ExternalRef externalRef(TensorProto t) {
        String location = null;
        long offset = 0;
        long length = -1;
        for (StringStringEntryProto e : t.getExternalDataList()) {
            switch (e.getKey()) {
                case "location" -> location = e.getValue();
                case "offset" -> offset = nonNegative(t, "offset", e.getValue());
                case "length" -> length = nonNegative(t, "length", e.getValue());
                default -> { }
            }
        }
        if (location == null) {
            throw new OnnxModelException.MissingExternalData("initializer '" + printable(t.getName())
                    + "' is marked external but names no location");
        }
        if (length < 0) {
            length = byteSize(t);
        }
        Path dir = (baseDir == null ? Path.of(".") : baseDir).toAbsolutePath().normalize();
        Path path;
        try {
            Path given = Path.of(location);
            if (given.isAbsolute() || given.getRoot() != null) {
                throw outside(t, location, dir, "is an absolute path");
            }
            path = dir.resolve(given).normalize();
        } catch (java.nio.file.InvalidPathException e) {
            throw outside(t, location, dir, "is not a valid path");
        }
        if (!path.startsWith(dir) || path.equals(dir)) {
            throw outside(t, location, dir, "leads out of the folder");
        }
        if (Files.exists(path)) {
            try {
                Path real = path.toRealPath();
                if (!real.startsWith(dir.toRealPath())) {
                    throw outside(t, location, dir, "is a link to a file outside the folder");
                }
            } catch (IOException e) {
                throw new OnnxModelException.MissingExternalData("initializer '" + printable(t.getName())
                        + "': cannot resolve external file " + path + ": " + e.getMessage());
            }
        }
        return new ExternalRef(location, path, offset, length);
    }

    private static OnnxModelException.ExternalDataOutsideModel outside(TensorProto t, String location, Path dir,
                                                                      String why) {
        return new OnnxModelException.ExternalDataOutsideModel("initializer '" + printable(t.getName())
                + "' names external data location '" + printable(location) + "', which " + why + "; external "
                + "data must lie inside the model's folder " + dir);
    }

    private static long nonNegative(TensorProto t, String key, String value) {
        try {
            long v = Long.parseLong(value.strip());
            if (v >= 0) {
                return v;
            }
        } catch (NumberFormatException e) {
            // the value is not echoed: it is text from the file, not a number
        }
        throw new OnnxModelException("initializer '" + printable(t.getName()) + "': its external data " + key
                + " is not a non-negative integer");
    }

    /**
     * Text from the model file as it may appear in a message: control characters escaped and at most 200
     * characters, so a hostile name or location cannot rewrite the terminal or flood the log.
     */
    static String printable(String text) {
        StringBuilder sb = new StringBuilder();
        text.codePoints().limit(200).forEach(c -> {
            if (Character.isISOControl(c) || !Character.isDefined(c)) {
                sb.append(String.format("\\u%04x", c));
            } else {
                sb.appendCodePoint(c);
            }
        });
        return text.codePointCount(0, text.length()) > 200 ? sb + "..." : sb.toString();
    }

    // ---- accessors -----------------------------------------------------------------------------------

    /** The file this model was loaded from; {@code null} for in-memory models. */
    public Path file() {
        return file;
    }

    public Path baseDir() {
        return baseDir;
    }

    /**
     * The files this model's weights come from: the model file and every external-data file its initializers name
     * (each once); {@code null} for a model parsed from memory. What an offload folder made from it is fingerprinted
     * against.
     */
    public List<Path> sourceFiles() {
        if (file == null) {
            return null;
        }
        java.util.Set<Path> files = new java.util.LinkedHashSet<>();
        files.add(file);
        for (TensorProto t : initializers.values()) {
            if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
                files.add(externalRef(t).path);
            }
        }
        return List.copyOf(files);
    }

    public ModelProto proto() {
        return proto;
    }

    public GraphProto graph() {
        return graph;
    }

    public List<NodeProto> nodes() {
        return graph.getNodeList();
    }

    public NodeProto node(int index) {
        return graph.getNode(index);
    }

    /** Graph inputs that are not initializers (the values a caller feeds). */
    public List<String> inputNames() {
        return Collections.unmodifiableList(inputNames);
    }

    public List<String> outputNames() {
        return Collections.unmodifiableList(outputNames);
    }

    /** Type and shape of a graph input, output or intermediate value, when the model records it. */
    public ValueInfoProto valueInfo(String name) {
        return valueInfos.get(name);
    }

    /** Index of the node producing {@code value}, or -1 for graph inputs, initializers and unknown names. */
    public int producer(String value) {
        Integer i = producers.get(value);
        return i == null ? -1 : i;
    }

    public Set<String> initializerNames() {
        return Collections.unmodifiableSet(initializers.keySet());
    }

    public boolean isInitializer(String name) {
        return initializers.containsKey(name);
    }

    public TensorProto initializer(String name) {
        TensorProto t = initializers.get(name);
        if (t == null) {
            throw new IllegalArgumentException("the model has no initializer '" + name + "'");
        }
        return t;
    }

    public OnnxDataType dataType(String initializer) {
        return OnnxDataType.of(initializer(initializer).getDataType());
    }

    public long[] dims(String initializer) {
        return initializer(initializer).getDimsList().stream().mapToLong(Long::longValue).toArray();
    }

    /** Core shape and dtype of an initializer. */
    public TensorSpec spec(String initializer) {
        OnnxDataType t = dataType(initializer);
        DType d = t.dtype();
        if (d == null) {
            throw new OnnxModelException("initializer '" + initializer + "' has ONNX type " + t
                    + ", which Ferry's core has no dtype for");
        }
        return new TensorSpec(dims(initializer), d);
    }

    public long byteSize(String initializer) {
        return byteSize(initializer(initializer));
    }

    private static long byteSize(TensorProto t) {
        OnnxDataType type = OnnxDataType.of(t.getDataType());
        if (type.byteSize() < 0) {
            return t.getStringDataList().stream().mapToLong(s -> s.size()).sum();
        }
        long n = 1;
        for (long d : t.getDimsList()) {
            n = Math.multiplyExact(n, d);
        }
        return Math.multiplyExact(n, type.byteSize());
    }

    /**
     * The initializer's bytes, little-endian, position 0, limit {@link #byteSize}: a zero-copy view of the
     * mapped model or external-data file where the data is raw; a direct buffer filled from the typed fields
     * otherwise. Valid as long as this model is reachable.
     */
    public ByteBuffer data(String name) {
        TensorProto t = initializer(name);
        if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL && FileAccess.current() == FileAccess.READ) {
            return readData(t).order(ByteOrder.LITTLE_ENDIAN); // a fresh copy: the caller keeps it as long as it needs
        }
        return dataCache.computeIfAbsent(name, n -> readData(t)).duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    private ByteBuffer readData(TensorProto t) {
        long size = byteSize(t);
        if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
            ExternalRef ref = externalRef(t);
            if (ref.length != size) {
                throw new OnnxModelException("initializer '" + t.getName() + "': external length " + ref.length
                        + " but its shape and type need " + size + " bytes");
            }
            try (FileChannel ch = FileChannel.open(ref.path)) {
                if (FileAccess.current() == FileAccess.READ) {
                    return FileReads.readOwned(ch, ref.path, t.getName(), ref.offset, Math.toIntExact(ref.length));
                }
                return dev.ferry.core.weights.MemoryMapping.mapRaw(ch, ref.path, ref.offset, ref.length);
            } catch (NoSuchFileException e) {
                throw new OnnxModelException.MissingExternalData("initializer '" + t.getName()
                        + "': external file " + ref.path + " disappeared");
            } catch (IOException e) {
                throw new UncheckedIOException("cannot map external data of '" + t.getName() + "'", e);
            }
        }
        OnnxDataType type = OnnxDataType.of(t.getDataType());
        if (type == OnnxDataType.STRING) {
            throw new OnnxModelException("initializer '" + t.getName() + "' holds strings; no byte view");
        }
        if (!t.getRawData().isEmpty() || size == 0) {
            if (t.getRawData().size() != size) {
                throw new OnnxModelException("initializer '" + t.getName() + "': raw_data has "
                        + t.getRawData().size() + " bytes but its shape and type need " + size);
            }
            ByteBuffer b = t.getRawData().asReadOnlyByteBuffer();
            if (b.isDirect()) {
                return b;
            }
            ByteBuffer copy = ByteBuffer.allocateDirect(b.remaining());
            copy.put(b).flip();
            return copy.asReadOnlyBuffer();
        }
        ByteBuffer out = ByteBuffer.allocateDirect(Math.toIntExact(size)).order(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case FLOAT -> t.getFloatDataList().forEach(out::putFloat);
            case DOUBLE -> t.getDoubleDataList().forEach(out::putDouble);
            case INT64 -> t.getInt64DataList().forEach(out::putLong);
            case UINT64 -> t.getUint64DataList().forEach(out::putLong);
            case UINT32 -> t.getUint64DataList().forEach(v -> out.putInt((int) (long) v));
            case INT32 -> t.getInt32DataList().forEach(out::putInt);
            case INT16, UINT16, FLOAT16, BFLOAT16 -> t.getInt32DataList().forEach(v -> out.putShort((short) (int) v));
            case INT8, UINT8, BOOL, FLOAT8E4M3FN, FLOAT8E5M2 ->
                    t.getInt32DataList().forEach(v -> out.put((byte) (int) v));
            default -> throw new OnnxModelException("initializer '" + t.getName() + "': no typed data for " + type);
        }
        if (out.position() != size) {
            throw new OnnxModelException("initializer '" + t.getName() + "': typed data has " + out.position()
                    + " bytes but its shape and type need " + size);
        }
        out.flip();
        return out.asReadOnlyBuffer();
    }

    // ---- dataflow helpers -----------------------------------------------------------------------------------

    /**
     * Every value a node reads: its inputs and, for control-flow nodes, the outer-scope values its subgraphs
     * read (implicit inputs). Empty names (omitted optional inputs) are left out.
     */
    public static Set<String> consumedValues(NodeProto node) {
        Set<String> out = new LinkedHashSet<>();
        for (String in : node.getInputList()) {
            if (!in.isEmpty()) {
                out.add(in);
            }
        }
        for (AttributeProto a : node.getAttributeList()) {
            if (a.hasG()) {
                out.addAll(outerScopeReads(a.getG()));
            }
            for (GraphProto g : a.getGraphsList()) {
                out.addAll(outerScopeReads(g));
            }
        }
        return out;
    }

    private static Set<String> outerScopeReads(GraphProto g) {
        Set<String> local = new LinkedHashSet<>();
        g.getInputList().forEach(v -> local.add(v.getName()));
        g.getInitializerList().forEach(t -> local.add(t.getName()));
        Set<String> reads = new LinkedHashSet<>();
        for (NodeProto n : g.getNodeList()) {
            for (String in : consumedValues(n)) {
                if (!local.contains(in)) {
                    reads.add(in);
                }
            }
            local.addAll(n.getOutputList());
        }
        return reads;
    }

    @Override
    public String toString() {
        return "OnnxModel(" + (file == null ? "in memory" : file) + ", " + graph.getNodeCount() + " nodes, "
                + initializers.size() + " initializers)";
    }
}
