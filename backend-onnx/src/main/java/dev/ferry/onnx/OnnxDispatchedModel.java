package dev.ferry.onnx;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.hook.Prefetcher;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.weights.WeightsStore;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * An ONNX model carried out by a plan: one ONNX Runtime session per {@link Partition}, each on its device's
 * execution provider, values crossing partitions passed as ORT tensors.
 *
 * <p>A resident partition's session is created once and kept; its weights are written into its sub-model, so
 * ONNX Runtime owns them (on an accelerator provider: uploads them) and optimises with them, as it would the
 * whole model. An offloaded partition's sub-model is weightless: every initializer above
 * {@link OnnxOptions#inlineThresholdBytes} is a placeholder, and each time the partition runs it gets a fresh
 * session whose initializers are supplied with {@code SessionOptions.addInitializer} as tensors over direct
 * buffers (zero copy on the CPU provider) from where the block is stored: host memory ({@code cpu}: copied
 * once into direct buffers) or disk ({@code disk}: the {@link OnnxOptions#diskStore}, or the memory-mapped
 * model file). The session and the weight tensors are closed right after the run. Its graph is optimised once,
 * at dispatch, and saved (weightless) to the cache folder, so later sessions load the optimised graph with
 * optimisation off.
 *
 * <p><b>Prefetch.</b> As the PyTorch backend fetches offloaded blocks ahead, while an offloaded partition runs
 * the next {@link OnnxOptions#prefetchPartitions} offloaded partitions (wrapping round to the first, for the
 * next run) are prepared on a background thread: their initializers read into direct buffers (host copies,
 * or the mapped file's pages touched), their tensors and their session created from the cached optimised graph.
 * Numbers are the same with prefetch on or off: only where the session is made changes.
 *
 * <p>Owns every session, tensor and result it makes (sessions prepared ahead included), counted in
 * {@link OnnxDispatchReport#ortObjects}; {@link #close} releases them all.
 *
 * <p><b>Threads.</b> Safe to call from several threads at once. {@link #run} is serialised on this object:
 * one run at a time, holding it from the first partition to the last, so an offloaded partition's session and
 * weights (made for one run, or prepared ahead for the next) serve that run only and are closed by it, the
 * prefetcher sees the partitions in run order, and device memory holds one running offloaded block plus those
 * prepared ahead, however many threads call. What a run produces is the caller's: each result owns its outputs
 * and may be read and closed on any thread, after other runs or after {@link #close}. {@link #report} and
 * {@link #close} wait for the run in progress.
 */
public final class OnnxDispatchedModel implements AutoCloseable {

    /** A resident partition's weights above this go to ORT as supplied initializers, not inside the protobuf. */
    static final long MAX_INLINE_PARTITION_BYTES = 1L << 30;

    private final OrtEnvironment env = OrtEnvironment.getEnvironment();
    private final OnnxModuleTree tree;
    private final OnnxModel model;
    private final DispatchPlan plan;
    private final OnnxOptions options;
    private final List<Partition> partitions;
    private final List<Runner> runners = new ArrayList<>();
    private final Map<String, ByteBuffer> hostCopies = new ConcurrentHashMap<>();
    private final Map<String, Integer> lastUse = new HashMap<>();
    private final Set<String> graphOutputs;
    private final Path cacheDir;
    private final boolean ownsCacheDir;
    private final OrtLedger ledger = new OrtLedger();
    private final OnnxWeights weights;
    private Prefetcher<SessionWithWeights> prefetcher;
    private boolean closed;

    private OnnxDispatchedModel(OnnxModuleTree tree, DispatchPlan plan, OnnxOptions options) {
        this.tree = tree;
        this.model = tree.model();
        this.plan = plan;
        this.options = options;
        this.graphOutputs = new LinkedHashSet<>(model.outputNames());
        this.weights = new OnnxWeights(tree, options.diskStore());
        this.partitions = GraphPartitioner.partition(tree, plan);
        // probe every provider before any session exists: a missing one is a named error, not a native crash
        for (Partition p : partitions) {
            options.devices().providerFor(p.execution()).configureCheck();
        }
        try {
            if (options.cacheDir() != null) {
                Files.createDirectories(options.cacheDir());
                this.cacheDir = options.cacheDir();
                this.ownsCacheDir = false;
            } else {
                this.cacheDir = Files.createTempDirectory("ferry-onnx-");
                this.ownsCacheDir = true;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the session cache folder", e);
        }
        for (Partition p : partitions) {
            p.inputs().forEach(in -> lastUse.put(in, p.index()));
        }
    }

    /** Builds the module tree of {@code model} and dispatches it. */
    public static OnnxDispatchedModel dispatch(OnnxModel model, DeviceMap map, PreloadRule preload,
                                               OnnxOptions options) {
        return dispatch(OnnxModuleTree.build(model), map, preload, options);
    }

    /**
     * Plans the dispatch with the core ({@link #plan}), partitions the graph by that plan, probes the
     * providers, creates the resident sessions and optimises (and caches) the offloaded partitions' graphs.
     * All or nothing: on failure, whatever was made is closed.
     */
    public static OnnxDispatchedModel dispatch(OnnxModuleTree tree, DeviceMap map, PreloadRule preload,
                                               OnnxOptions options) {
        return dispatch(tree, plan(tree, map, preload), options);
    }

    /** Carries out {@code plan}, made by {@link #plan} for {@code tree} (so a caller that checked it plans once). */
    public static OnnxDispatchedModel dispatch(OnnxModuleTree tree, DispatchPlan plan, OnnxOptions options) {
        OnnxDispatchedModel m = new OnnxDispatchedModel(tree, plan, options);
        try {
            m.prepare();
            return m;
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    private void prepare() {
        Map<String, ValueInfoProto> knownTypes = new HashMap<>();
        List<Supplier<SessionWithWeights>> offloaded = new ArrayList<>();
        for (Partition p : partitions) {
            Runner r = new Runner(p, options.devices().providerFor(p.execution()));
            runners.add(r);
            r.prepare(knownTypes);
            if (p.offloaded()) {
                r.offloadedPosition = offloaded.size();
                offloaded.add(() -> r.create(false));
            }
        }
        if (options.prefetchPartitions() > 0 && !offloaded.isEmpty()) {
            // the core's block prefetcher, as the PyTorch backend's offload hooks use it
            prefetcher = new Prefetcher<>(options.prefetchPartitions(), SessionWithWeights::close);
            offloaded.forEach(prefetcher::register);
        }
    }

    public List<Partition> partitions() {
        return partitions;
    }

    public OnnxModuleTree tree() {
        return tree;
    }

    /** The core's dispatch plan this model carries out ({@code plan().report()} for people). */
    public DispatchPlan plan() {
        return plan;
    }

    /**
     * The core's plan ({@link Dispatcher#plan}) of the graph's module tree under {@code map} and {@code preload}:
     * the blocks, which are offloaded, where each executes and which modules are preload units; the partitions
     * are cut from it. Ops need no key of their own (ops without tensors are placed by dataflow), tensors do.
     * A key naming a module the export has no op of (Dropout, {@code transformer.drop}: its parent is in the
     * graph, it is not) is accepted: nothing to place, and the plan lists it in
     * {@link DispatchPlan#keysWithoutModules}.
     *
     * @throws OnnxModelException.UnknownScope when the map names scopes the graph lacks (whose parent it lacks too,
     *                                         or a block index beyond the graph's)
     * @throws OnnxModelException.InvalidPlan  when the core rejects the map (it splits a preload unit, or leaves
     *                                         tensors without a device)
     */
    public static DispatchPlan plan(OnnxModuleTree tree, DeviceMap map, PreloadRule preload) {
        List<String> withoutOps = keysWithoutOps(tree, map);
        DeviceMap kept = map;
        if (!withoutOps.isEmpty()) {
            Map<String, Device> entries = new LinkedHashMap<>(map.entries());
            withoutOps.forEach(entries::remove);
            kept = DeviceMap.of(entries);
        }
        try {
            return Dispatcher.plan(tree.root(), kept, preload).withKeysWithoutModules(withoutOps);
        } catch (IllegalArgumentException e) {
            throw new OnnxModelException.InvalidPlan(e.getMessage(), e);
        }
    }

    /**
     * Keys of modules the export has no op of: the parent is a module of the graph, the key is not, and it is no
     * index of a list (an index beyond the graph's blocks is a mistake, not a module without ops).
     */
    private static List<String> keysWithoutOps(OnnxModuleTree tree, DeviceMap map) {
        List<String> unknown = map.entries().keySet().stream().filter(k -> tree.module(k) == null).toList();
        if (unknown.isEmpty()) {
            return List.of();
        }
        List<String> withoutOps = new ArrayList<>();
        List<String> refused = new ArrayList<>();
        for (String k : unknown) {
            int dot = k.lastIndexOf('.');
            String parent = dot < 0 ? "" : k.substring(0, dot);
            String local = k.substring(dot + 1);
            boolean index = !local.isEmpty() && local.chars().allMatch(Character::isDigit);
            (tree.module(parent) != null && !index && !local.isEmpty() ? withoutOps : refused).add(k);
        }
        if (refused.isEmpty()) {
            return withoutOps;
        }
        List<String> examples = new ArrayList<>();
        for (Module c : tree.root().children().values()) {
            examples.add(c.name());
            c.children().values().stream().limit(3).forEach(g -> examples.add(g.name()));
            if (examples.size() > 6) {
                break;
            }
        }
        throw new OnnxModelException.UnknownScope("the device map names scopes the graph lacks: " + refused
                + " (the graph's scopes look like " + examples + "; modules without ops in the export, "
                + "such as Dropout, are accepted only where their parent has ops)");
    }

    /**
     * Runs the model. The caller keeps ownership of {@code inputs}; the result owns the outputs. Intermediate
     * values are released as soon as the last partition reading them has run. Calls from other threads wait
     * until this one has finished (see the class comment).
     */
    public synchronized OnnxRunResult run(Map<String, ? extends OnnxTensorLike> inputs) {
        if (closed) {
            throw new IllegalStateException("this dispatched model is closed");
        }
        List<String> missing = model.inputNames().stream().filter(n -> !inputs.containsKey(n)).toList();
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("missing model inputs " + missing + "; the model takes "
                    + model.inputNames());
        }
        Map<String, OnnxTensorLike> values = new HashMap<>(inputs);
        Map<String, OrtSession.Result> ownerOf = new HashMap<>();
        Map<OrtSession.Result, int[]> live = new IdentityHashMap<>();
        try {
            for (Runner r : runners) {
                OrtSession.Result result = ledger.made(r.run(values));
                int[] count = {0};
                for (Map.Entry<String, OnnxValue> e : result) {
                    values.put(e.getKey(), (OnnxTensor) e.getValue());
                    ownerOf.put(e.getKey(), result);
                    count[0]++;
                }
                live.put(result, count);
                for (String in : r.partition.inputs()) {
                    if (lastUse.get(in) == r.partition.index() && !graphOutputs.contains(in)) {
                        OrtSession.Result owner = ownerOf.remove(in);
                        values.remove(in);
                        if (owner != null && --live.get(owner)[0] == 0) {
                            live.remove(owner);
                            ledger.close(owner);
                        }
                    }
                }
                if (count[0] == 0) {
                    live.remove(result);
                    ledger.close(result);
                }
            }
            Map<String, OnnxTensor> outs = new LinkedHashMap<>();
            Set<OrtSession.Result> owners = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
            for (String o : model.outputNames()) {
                OrtSession.Result owner = ownerOf.get(o);
                if (owner == null) {
                    throw new OnnxModelException("graph output '" + o + "' is not computed by any op");
                }
                outs.put(o, (OnnxTensor) values.get(o));
                owners.add(owner);
            }
            live.keySet().removeAll(owners);
            live.keySet().forEach(ledger::close);
            return new OnnxRunResult(outs, owners, ledger::close);
        } catch (RuntimeException e) {
            live.keySet().forEach(ledger::close);
            throw e;
        }
    }

    /**
     * Per partition: provider, nodes, initializer bytes, session-creation times; the number of sessions; the
     * prefetch and the ONNX Runtime objects made and closed. Waits for preparations in flight first, so the
     * numbers are settled. Also answers after {@link #close}, to show that nothing is left open.
     */
    public synchronized OnnxDispatchReport report() {
        if (prefetcher != null) {
            prefetcher.settle();
        }
        List<PartitionReport> rows = new ArrayList<>();
        int created = 0;
        int resident = 0;
        for (Runner r : runners) {
            Partition p = r.partition;
            rows.add(new PartitionReport(p.index(), p.label(), p.block(), p.storage(), p.execution(), p.offloaded(),
                    r.provider, p.nodes().size(), p.initializers().size(), p.initializerBytes(), r.firstMillis,
                    r.lastMillis, r.sessionsCreated.get()));
            created += r.sessionsCreated.get();
            if (r.resident != null) {
                resident++;
            }
        }
        OnnxDispatchReport.Prefetch prefetch = prefetcher == null ? new OnnxDispatchReport.Prefetch(0, 0, 0, 0)
                : new OnnxDispatchReport.Prefetch(options.prefetchPartitions(), prefetcher.prepared(),
                        prefetcher.hits(), prefetcher.misses());
        return new OnnxDispatchReport(plan.report(), rows, partitions.size(), resident, created, prefetch, ledger.counts());
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (prefetcher != null) {
            prefetcher.close(); // before the runners: what it prepared reads their state
        }
        for (Runner r : runners) {
            r.close();
        }
        hostCopies.clear();
        if (ownsCacheDir) {
            try (Stream<Path> files = Files.walk(cacheDir)) {
                files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            } catch (IOException ignored) {
                // a temporary folder; nothing depends on it any more
            }
        }
    }

    // ---- one partition ----------------------------------------------------------------------------------

    /** A session and the weight tensors supplied to it (which must outlive it); closing releases both. */
    private final class SessionWithWeights implements AutoCloseable {
        final OrtSession session;
        final List<OnnxTensor> tensors;

        SessionWithWeights(OrtSession session, List<OnnxTensor> tensors) {
            this.session = session;
            this.tensors = tensors;
        }

        @Override
        public void close() {
            try {
                ledger.close(session);
            } finally {
                tensors.forEach(ledger::close);
            }
        }
    }

    /**
     * One partition. Offloaded ones create sessions on the run's thread or, prepared ahead, on the prefetch
     * thread: what {@link #create} reads is fixed at dispatch, and its counters are thread-safe.
     */
    private final class Runner {
        final Partition partition;
        final ExecutionProvider provider;
        final Set<String> supplied = new LinkedHashSet<>();
        /** The partition's sub-model, written into the cache folder beside the placeholders' location. */
        Path source;
        Path optimized;
        Set<String> suppliedToOptimized;
        SessionWithWeights resident;
        int offloadedPosition = -1;
        double firstMillis;
        volatile double lastMillis;
        final AtomicInteger sessionsCreated = new AtomicInteger();

        Runner(Partition partition, ExecutionProvider provider) {
            this.partition = partition;
            this.provider = provider;
        }

        void prepare(Map<String, ValueInfoProto> knownTypes) {
            // offloaded: every sizeable initializer is supplied from its store at each session creation.
            // resident: the weights go into the sub-model, so ORT owns them and optimises with them (folds
            // transposes, prepacks); only external data and partitions too large for one protobuf are supplied
            long inlineBytes = 0;
            for (String init : partition.initializers()) {
                inlineBytes += model.byteSize(init);
            }
            boolean tooLarge = inlineBytes > MAX_INLINE_PARTITION_BYTES;
            for (String init : partition.initializers()) {
                TensorProto t = model.initializer(init);
                OnnxDataType type = OnnxDataType.of(t.getDataType());
                boolean external = t.getDataLocation() == TensorProto.DataLocation.EXTERNAL;
                boolean sizeable = external || model.byteSize(init) >= options.inlineThresholdBytes();
                if (type.javaType() != null && sizeable && (partition.offloaded() || external || tooLarge)) {
                    supplied.add(init);
                }
            }
            ModelProto sub = SubModel.build(model, partition, knownTypes, supplied);
            source = cacheDir.resolve("partition-" + partition.index() + "-" + provider.kind() + "-source.onnx");
            try {
                // ONNX Runtime (1.24 on) checks that every external-data location exists inside the model's folder
                // before initializers are supplied, so the sub-model is loaded from a file in Ferry's cache folder,
                // where an empty file stands at the placeholders' location; ORT never reads it
                Path placeholder = cacheDir.resolve(SubModel.SUPPLIED);
                if (!Files.exists(placeholder, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                    Files.createFile(placeholder);
                }
                Files.write(source, sub.toByteArray());
            } catch (IOException e) {
                throw new java.io.UncheckedIOException("cannot write partition " + partition.label() + " to "
                        + cacheDir, e);
            }
            optimized = cacheDir.resolve("partition-" + partition.index() + "-" + provider.kind() + ".onnx");
            SessionWithWeights c = create(true);
            try {
                for (Map.Entry<String, NodeInfo> e : c.session.getOutputInfo().entrySet()) {
                    knownTypes.put(e.getKey(), SubModel.fromOrt(e.getKey(), e.getValue()));
                }
            } catch (OrtException e) {
                c.close();
                throw new OnnxModelException.RuntimeFailure("partition " + partition.label() + ": " + e.getMessage(), e);
            }
            if (partition.offloaded()) {
                suppliedToOptimized = placeholdersIn(optimized);
                c.close();
            } else {
                resident = c;
            }
        }

        SessionWithWeights create(boolean first) {
            List<OnnxTensor> tensors = new ArrayList<>();
            OrtSession s = null;
            try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
                provider.configure(so);
                // quiet below FATAL: supplied initializers are graph inputs on purpose (ORT warns about each one
                // at WARNING), and a failed run's cause comes back in the OrtException, so the ERROR line ORT would
                // also print on the process's stderr (a raw native log line) only repeats it
                so.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
                if (options.intraOpThreads() > 0) {
                    so.setIntraOpNumThreads(options.intraOpThreads());
                }
                if (partition.offloaded()) {
                    so.addConfigEntry("session.disable_prepacking", "1"); // no second copy of streamed weights
                }
                boolean fromCache = partition.offloaded() && !first;
                for (String init : fromCache ? suppliedToOptimized : supplied) {
                    OnnxTensor t = ledger.tensor(env, bytesOf(init), model.dims(init), model.dataType(init).javaType());
                    tensors.add(t);
                    so.addInitializer(init, t);
                }
                long t0 = System.nanoTime();
                if (fromCache) {
                    so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
                    s = ledger.made(env.createSession(optimized.toString(), so));
                } else {
                    so.setOptimizationLevel(options.optimizationLevel());
                    if (partition.offloaded()) {
                        so.setOptimizedModelFilePath(optimized.toString());
                    }
                    s = ledger.made(env.createSession(source.toString(), so));
                }
                double ms = (System.nanoTime() - t0) / 1e6;
                if (first) {
                    firstMillis = ms;
                }
                lastMillis = ms;
                sessionsCreated.incrementAndGet();
                return new SessionWithWeights(s, tensors);
            } catch (OrtException | RuntimeException e) {
                if (s != null) {
                    ledger.close(s);
                }
                tensors.forEach(ledger::close);
                if (e instanceof OnnxModelException ome) {
                    throw ome;
                }
                throw new OnnxModelException.RuntimeFailure("ONNX Runtime refused partition " + partition.label()
                        + " on " + provider + ": " + e.getMessage(), e);
            }
        }

        /**
         * The initializer's bytes from where this partition stores them, through the core's {@link WeightsStore}
         * ({@link OnnxWeights}: the offload store, else the mapped model file); direct, native order, zero copy.
         */
        private ByteBuffer bytesOf(String init) {
            Device storage = partition.storage();
            if (partition.offloaded() && storage.kind() == Device.Kind.DISK) {
                return paged(direct(weights.bytes(init)));
            }
            if (partition.execution().kind() == Device.Kind.CPU || storage.kind() == Device.Kind.CPU) {
                // held in this process's memory: copied once, shared by every partition reading it
                return hostCopies.computeIfAbsent(init, n -> {
                    ByteBuffer src = weights.bytes(n);
                    ByteBuffer copy = ByteBuffer.allocateDirect(src.remaining()).order(ByteOrder.nativeOrder());
                    copy.put(src.duplicate()).flip();
                    return copy;
                }).duplicate().order(ByteOrder.nativeOrder());
            }
            return direct(weights.bytes(init)); // the provider uploads it to its device
        }

        /** Brings a memory-mapped buffer's pages into memory now, not when ORT first reads them. */
        private ByteBuffer paged(ByteBuffer b) {
            if (b instanceof MappedByteBuffer m) {
                m.load(); // no-op for buffers that map no file
            }
            return b;
        }

        private ByteBuffer direct(ByteBuffer b) {
            if (b.isDirect()) {
                return b.duplicate().order(ByteOrder.nativeOrder());
            }
            ByteBuffer copy = ByteBuffer.allocateDirect(b.remaining()).order(ByteOrder.nativeOrder());
            copy.put(b.duplicate()).flip();
            return copy;
        }

        OrtSession.Result run(Map<String, OnnxTensorLike> values) {
            Map<String, OnnxTensorLike> feed = new LinkedHashMap<>();
            for (String in : partition.inputs()) {
                OnnxTensorLike v = values.get(in);
                if (v == null) {
                    throw new IllegalStateException("partition " + partition.label() + " needs '" + in
                            + "', which no earlier partition produced");
                }
                feed.put(in, v);
            }
            SessionWithWeights c = null;
            if (partition.offloaded()) {
                c = prefetcher != null ? prefetcher.take(offloadedPosition) : null;
                if (c == null) {
                    c = create(false);
                }
            }
            OrtSession s = c != null ? c.session : resident.session;
            try {
                return s.run(feed, new LinkedHashSet<>(partition.outputs()));
            } catch (OrtException e) {
                throw new OnnxModelException.RuntimeFailure("partition " + partition.label() + " failed on "
                        + provider + ": " + e.getMessage(), e);
            } finally {
                if (c != null) {
                    c.close(); // outputs keep their own allocator alive; the weights' tensors go now
                }
            }
        }

        void close() {
            if (resident != null) {
                resident.close();
                resident = null;
            }
        }
    }

    /** Names of the supplied placeholders still present in an optimised graph (fusions may drop some). */
    private static Set<String> placeholdersIn(Path optimizedModel) {
        try {
            ModelProto m = ModelProto.parseFrom(Files.readAllBytes(optimizedModel));
            Set<String> names = new LinkedHashSet<>();
            for (TensorProto t : m.getGraph().getInitializerList()) {
                if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
                    for (StringStringEntryProto e : t.getExternalDataList()) {
                        if (e.getKey().equals("location") && e.getValue().equals(SubModel.SUPPLIED)) {
                            names.add(t.getName());
                        }
                    }
                }
            }
            return names;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the cached optimised graph " + optimizedModel, e);
        }
    }
}
