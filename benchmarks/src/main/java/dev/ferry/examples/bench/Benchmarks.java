package dev.ferry.examples.bench;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.hook.AlignDevicesHook;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.FileAccess;
import dev.ferry.core.weights.HostMemoryStore;
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.SafetensorsFile;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Ferry's performance benchmarks. Each prints times of its variants, measured interleaved in rounds, and
 * ratios against a baseline measured in the same run (never against numbers from another run or machine).
 *
 * <pre>
 * java -Dai.djl.offline=true -cp "examples/target/classes:$(cat cp.txt)" dev.ferry.examples.bench.Benchmarks NAME [key=value ...]
 *   hooks    dispatched model, every block resident on the CPU, vs the same model called plainly
 *   offload  half the blocks on disk vs all resident; prefetch on/off; page cache warm and cold;
 *            effective GB/s streamed vs a plain sequential read of the same bytes
 *   load     checkpoint to resident tensors (pages in memory) vs a plain sequential read of the file
 *   all      the three above
 * options: rounds=N reps=N dir=/tmp/... keep=true (keep generated checkpoints) seq=N (tokens per forward)
 *          layers=N hidden=N intermediate=N vocab=N dtype=float32|bfloat16 (offload/load model shape)
 * </pre>
 */
public final class Benchmarks {

    static final Device CPU = Device.cpu();
    static final Device DISK = Device.disk();
    static final String LAYER = "LlamaDecoderLayer";
    /** The default load: resident weights read into memory Ferry owns (issue 21), nothing left to fault in. */
    static final String LOAD_READ = "load_checkpoint_and_dispatch, read into owned memory, ";
    /** The unsafe zero-copy load ({@code -Dferry.unsafeMapWeightsInPlace=true}): views of the mapping, pages faulted in. */
    static final String LOAD_TOUCH = "load_checkpoint_and_dispatch mapped in place (unsafe) + page faults, ";
    static final String LOAD_MADVISE = "load_checkpoint_and_dispatch mapped in place (unsafe) + MappedByteBuffer.load, ";

    private final Map<String, String> opts;
    /** Fraction of the checkpoint still cached right after each eviction of a cold measurement. */
    private final List<Double> coldCached = new ArrayList<>();
    private final Path dir;

    private Benchmarks(Map<String, String> opts) {
        this.opts = opts;
        this.dir = Path.of(opts.getOrDefault("dir", System.getProperty("java.io.tmpdir") + "/ferry-bench"));
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            System.err.println("usage: Benchmarks hooks|offload|load|reuse|all [key=value ...]");
            System.exit(2);
        }
        Map<String, String> opts = new LinkedHashMap<>();
        for (int i = 1; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            opts.put(kv[0], kv.length > 1 ? kv[1] : "true");
        }
        Benchmarks b = new Benchmarks(opts);
        System.out.printf(Locale.ROOT, "# Ferry benchmarks, %s, %d cpus, java %s, %s%n", LocalDate.now(),
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"), opts);
        try {
            switch (args[0]) {
                case "hooks" -> b.hooks();
                case "offload" -> b.offload();
                case "load" -> b.load();
                case "reuse" -> b.reuse();
                case "all" -> {
                    b.hooks();
                    b.offload();
                    b.load();
                }
                default -> throw new IllegalArgumentException("unknown benchmark " + args[0]);
            }
        } finally {
            if (!Boolean.parseBoolean(opts.getOrDefault("keep", "false"))) {
                deleteTree(b.dir);
            }
        }
        System.exit(0); // prefetch threads are daemons; DJL keeps none alive, but be explicit
    }

    private int opt(String key, int fallback) {
        return Integer.parseInt(opts.getOrDefault(key, String.valueOf(fallback)));
    }

    // ---- hook overhead ----------------------------------------------------------------------------------

    /**
     * Llama 12 × 512 (intermediate 1408, vocab 8000), every block resident on the CPU: the plain model vs the
     * same weights dispatched with preload class LlamaDecoderLayer (13 hooks) and without (every module that
     * owns tensors hooked). Goal: ≤ 1.03×.
     */
    void hooks() {
        SyntheticCheckpoint.Shape shape = new SyntheticCheckpoint.Shape(opt("hooks.hidden", 512), 1408,
                opt("hooks.layers", 12), 8, 4, 8000);
        int seq = opt("seq", 32);
        int rounds = opt("rounds", 7);
        int reps = opt("reps", 10);
        Path model = SyntheticCheckpoint.write(dir.resolve("hooks"), shape, DType.FLOAT32, 1);
        System.out.printf(Locale.ROOT, "%n## hooks: %s, %d tokens per forward%n", shape, seq);
        ModelConfig config = ModelConfig.read(model);
        try (DjlBackend backend = new DjlBackend();
             SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(model)) {
            HostMemoryStore memory = HostMemoryStore.copyOf(ckpt); // weights in process memory, not the mapping
            Map<String, CausalLM> models = new LinkedHashMap<>();
            for (String v : List.of("plain", "dispatched, preload LlamaDecoderLayer", "dispatched, no preload")) {
                CausalLM m = ModelFamilies.build(config, backend);
                ModelFamilies.load(m, memory, backend, CPU);
                if (!v.equals("plain")) {
                    DispatchOptions o = DispatchOptions.of(blockMap(m, shape.layers(), i -> CPU));
                    if (v.contains("preload")) {
                        o = o.withPreloadClasses(Set.of(LAYER));
                    }
                    var report = new Dispatcher(backend).dispatch(m, o);
                    v = v + " (" + report.hookedCount() + " hooks)";
                }
                models.put(v, m);
            }
            long[] ids = tokenIds(seq, shape.vocab());
            try (DjlTensor input = backend.tokens(ids, CPU)) {
                Samples s = new Samples();
                for (int r = -1; r < rounds; r++) { // round -1 warms up
                    for (var e : models.entrySet()) {
                        double[] t = Samples.time(reps, () -> forward(e.getValue(), input));
                        if (r >= 0) {
                            s.add(e.getKey(), t);
                        }
                    }
                }
                System.out.print(s.table("plain"));
            }
            models.values().forEach(Benchmarks::dispose);
        }
    }

    // ---- disk offload -----------------------------------------------------------------------------------

    /**
     * Llama 16 × 1024 (intermediate 2816, vocab 32000; 1.0 GB in float32), the last half of the decoder layers
     * on disk (as {@code infer_auto_device_map} fills devices first to last), read in place from the
     * checkpoint. Warm: steady-state forwards, prefetch off / 1 ahead, against all resident. Cold: the first
     * forward after load with the offloaded tensors' pages dropped from the page cache, against the same with
     * them cached. Plus a plain sequential read of the offloaded bytes, warm and cold, in the same run.
     */
    void offload() {
        SyntheticCheckpoint.Shape shape = bigShape();
        DType stored = DType.fromTorch(opts.getOrDefault("dtype", "float32"));
        int seq = opt("seq", 16);
        int rounds = opt("rounds", 5);
        int reps = opt("reps", 3);
        Path model = SyntheticCheckpoint.write(dir.resolve("offload-" + stored.torchName()), shape, stored, 2);
        Path file = model.resolve(SafetensorsCheckpoint.SINGLE_FILE);
        ModelConfig config = ModelConfig.read(model);
        int layers = shape.layers();
        DeviceMap resident;
        DeviceMap halfDisk;
        List<long[]> offloadedRanges = new ArrayList<>();
        long offloadedBytes = 0;
        try (DjlBackend backend = new DjlBackend(); SafetensorsFile f = SafetensorsFile.open(file)) {
            CausalLM meta = ModelFamilies.build(config, backend);
            resident = blockMap(meta, layers, i -> CPU);
            halfDisk = blockMap(meta, layers, i -> i >= layers / 2 ? DISK : CPU);
            for (SafetensorsFile.Entry e : f.entries()) {
                if (halfDisk.deviceOf(e.name()).equals(DISK)) {
                    offloadedRanges.add(new long[] {e.fileOffset(), e.byteSize()});
                    offloadedBytes += e.byteSize();
                }
            }
        }
        offloadedRanges.sort(Comparator.comparingLong(r -> r[0]));
        final long streamed = offloadedBytes;
        System.out.printf(Locale.ROOT, "%n## offload: %s stored as %s (%.0f MB file), layers %d-%d on disk "
                        + "(%.0f MB streamed per forward), %d tokens per forward%n", shape, stored.torchName(),
                size(file) / 1e6, layers / 2, layers - 1, streamed / 1e6, seq);
        long[] ids = tokenIds(seq, shape.vocab());

        try (DjlBackend backend = new DjlBackend()) {
            // warm: steady-state forwards of already loaded models
            Samples warm = new Samples();
            // the same checkpoint opened a second time with the unsafe zero-copy option: its disk blocks are used in
            // place from the mapping (the pre-issue-21 path), against the default that reads them into reused buffers
            System.setProperty(FileAccess.PROPERTY, "true");
            SafetensorsCheckpoint mappedCkpt = SafetensorsCheckpoint.open(model);
            System.clearProperty(FileAccess.PROPERTY);
            try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(model); mappedCkpt;
                 DjlTensor input = backend.tokens(ids, CPU)) {
                Map<String, CausalLM> models = new LinkedHashMap<>();
                models.put("all resident", loaded(backend, config, ckpt, resident, 0));
                models.put("half on disk, prefetch off", loaded(backend, config, ckpt, halfDisk, 0));
                models.put("half on disk, prefetch 1", loaded(backend, config, ckpt, halfDisk, 1));
                models.put("half on disk, prefetch 2", loaded(backend, config, ckpt, halfDisk, 2));
                models.put("half on disk, prefetch off, mapped in place", loaded(backend, config, mappedCkpt, halfDisk, 0));
                models.put("half on disk, prefetch 1, mapped in place", loaded(backend, config, mappedCkpt, halfDisk, 1));
                for (int r = -1; r < rounds; r++) {
                    for (var e : models.entrySet()) {
                        double[] t = Samples.time(reps, () -> forward(e.getValue(), input));
                        if (r >= 0) {
                            warm.add(e.getKey(), t);
                        }
                    }
                    double[] t = Samples.time(reps, () -> PageCache.rangeRead(file, offloadedRanges));
                    if (r >= 0) {
                        warm.add("plain read of the offloaded bytes", t);
                    }
                }
                models.values().forEach(Benchmarks::dispose);
            }
            System.out.println("warm page cache (steady state):");
            System.out.print(warm.table("all resident"));
            report(warm, streamed, "all resident", "plain read of the offloaded bytes",
                    List.of("half on disk, prefetch off", "half on disk, prefetch 1", "half on disk, prefetch 2",
                            "half on disk, prefetch off, mapped in place", "half on disk, prefetch 1, mapped in place"));
            for (String p : List.of("prefetch off", "prefetch 1")) {
                System.out.printf(Locale.ROOT, "  read into owned buffers vs mapped in place (zero copy), %s: %.3fx%n", p,
                        warm.ratio("half on disk, " + p, "half on disk, " + p + ", mapped in place"));
            }

            if (!Boolean.parseBoolean(opts.getOrDefault("cold", "true"))) {
                return;
            }
            // cold: first forward after load, offloaded pages dropped (or not, for the cached baseline)
            Samples cold = new Samples();
            int coldRounds = opt("coldRounds", 3);
            String[] variants = {"cached, prefetch off", "cached, prefetch 1", "cold, prefetch off", "cold, prefetch 1"};
            for (int r = -1; r < coldRounds; r++) {
                for (String v : variants) {
                    double t = firstForward(backend, config, model, halfDisk, v.contains("prefetch 1") ? 1 : 0,
                            v.startsWith("cold"), ids, file);
                    if (r >= 0) {
                        cold.add(v, new double[] {t});
                    }
                }
                PageCache.evict(List.of(file));
                long t0 = System.nanoTime();
                PageCache.rangeRead(file, offloadedRanges);
                double t = (System.nanoTime() - t0) / 1e9;
                if (r >= 0) {
                    cold.add("plain read of the offloaded bytes, cold", new double[] {t});
                }
            }
            System.out.printf(Locale.ROOT, "first forward after load (cold: the checkpoint's pages dropped before loading;"
                    + " cached right after dropping: %s)%n", coldCached.stream()
                    .map(f -> String.format(Locale.ROOT, "%.0f%%", 100 * f)).toList());
            System.out.print(cold.table("cached, prefetch off"));
            double read = cold.median("plain read of the offloaded bytes, cold");
            for (String p : List.of("prefetch off", "prefetch 1")) {
                double extra = cold.median("cold, " + p) - cold.median("cached, " + p);
                System.out.printf(Locale.ROOT, "  cold, %s: %.0f ms more than cached = %.2f GB/s of offloaded weights;"
                                + " plain cold read of the same bytes %.2f GB/s (%.0f ms): ratio %.2f%n", p,
                        extra * 1e3, streamed / extra / 1e9, streamed / read / 1e9, read * 1e3, read / extra);
            }
        }
        if (!keep()) {
            deleteTree(model);
        }
    }

    private boolean keep() {
        return Boolean.parseBoolean(opts.getOrDefault("keep", "false"));
    }

    private void report(Samples s, long streamed, String baseline, String read, List<String> variants) {
        double readGbs = streamed / s.median(read) / 1e9;
        for (String v : variants) {
            double extra = s.median(v) - s.median(baseline);
            System.out.printf(Locale.ROOT, "  %s: %.3fx resident, %.0f ms of offload work per forward, %s"
                            + " weights streamed per forward at %.2f GB/s of forward time; plain read %.2f GB/s%n", v,
                    s.ratio(v, baseline), extra * 1e3,
                    extra > 0 ? String.format(Locale.ROOT, "%.2f GB/s over the extra time,", streamed / extra / 1e9)
                            : "no measurable extra time,",
                    streamed / s.median(v) / 1e9, readGbs);
        }
    }

    /** Seconds of the first forward of a freshly loaded model; the offloaded bytes cold or cached. */
    private double firstForward(DjlBackend backend, ModelConfig config, Path model, DeviceMap map, int prefetch,
                                boolean cold, long[] ids, Path file) {
        if (cold) {
            PageCache.evict(List.of(file));
            coldCached.add(PageCache.residentFraction(file));
        }
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(model);
             DjlTensor input = backend.tokens(ids, CPU)) {
            CausalLM m = loaded(backend, config, ckpt, map, prefetch);
            // resident tensors are zero-copy views of the mapping: fault them in now, untimed
            for (String k : ckpt.keys()) {
                if (!map.deviceOf(k).equals(DISK)) {
                    touch(ckpt.bytes(k));
                }
            }
            long t0 = System.nanoTime();
            forward(m, input);
            double t = (System.nanoTime() - t0) / 1e9;
            dispose(m);
            return t;
        }
    }

    // ---- loading ----------------------------------------------------------------------------------------

    /**
     * load_checkpoint_and_dispatch of the 1.0 GB model, all resident on the CPU, until every weight is in
     * memory (resident CPU tensors are zero-copy views of the mapped file, so the pages are faulted in after the
     * call), against a plain sequential read of the same file; both with the file's pages dropped first (cold)
     * and cached (warm). Goal: ≥ 0.8 of the plain read's GB/s.
     */
    void load() {
        SyntheticCheckpoint.Shape shape = bigShape();
        DType stored = DType.fromTorch(opts.getOrDefault("dtype", "float32"));
        Path model = SyntheticCheckpoint.write(dir.resolve("load-" + stored.torchName()), shape, stored, 3);
        Path file = model.resolve(SafetensorsCheckpoint.SINGLE_FILE);
        ModelConfig config = ModelConfig.read(model);
        long bytes = size(file);
        int rounds = opt("loadRounds", 3);
        System.out.printf(Locale.ROOT, "%n## load: %s stored as %s, %.0f MB file%n", shape, stored.torchName(),
                bytes / 1e6);
        Samples s = new Samples();
        try (DjlBackend backend = new DjlBackend()) {
            DeviceMap all = blockMap(ModelFamilies.build(config, backend), shape.layers(), i -> CPU);
            for (int r = -1; r < rounds; r++) {
                for (boolean cold : new boolean[] {true, false}) {
                    String state = cold ? "cold" : "warm";
                    if (cold) {
                        PageCache.evict(List.of(file));
                    }
                    double[] t = Samples.time(1, () -> PageCache.sequentialRead(List.of(file)));
                    if (r >= 0) {
                        s.add("plain sequential read, " + state, t);
                    }
                    for (String variant : List.of(LOAD_READ, LOAD_TOUCH, LOAD_MADVISE)) {
                        if (cold) {
                            PageCache.evict(List.of(file));
                        }
                        boolean mapped = !variant.equals(LOAD_READ);
                        CausalLM[] m = new CausalLM[1];
                        SafetensorsCheckpoint[] ckpt = new SafetensorsCheckpoint[1];
                        if (mapped) {
                            System.setProperty(FileAccess.PROPERTY, "true"); // read when the file is opened
                        }
                        try {
                            t = Samples.time(1, () -> {
                                ckpt[0] = SafetensorsCheckpoint.open(model);
                                m[0] = loaded(backend, config, ckpt[0], all, 0);
                                if (mapped) {
                                    // resident CPU tensors are zero-copy views of the mapping: bring every page in
                                    ckpt[0].keys().forEach(k -> {
                                        ByteBuffer b = ckpt[0].bytes(k);
                                        if (variant.equals(LOAD_MADVISE) && b instanceof java.nio.MappedByteBuffer mb) {
                                            mb.load();
                                        } else {
                                            touch(b);
                                        }
                                    });
                                }
                            });
                        } finally {
                            System.clearProperty(FileAccess.PROPERTY);
                        }
                        dispose(m[0]);
                        ckpt[0].close();
                        if (r >= 0) {
                            s.add(variant + state, t);
                        }
                    }
                }
            }
        }
        System.out.print(s.table("plain sequential read, cold"));
        for (String state : List.of("cold", "warm")) {
            double plain = bytes / s.median("plain sequential read, " + state) / 1e9;
            for (String v : List.of(LOAD_READ, LOAD_TOUCH, LOAD_MADVISE)) {
                double ferry = bytes / s.median(v + state) / 1e9;
                System.out.printf(Locale.ROOT, "  %s%s: %.2f GB/s vs plain read %.2f GB/s: ratio %.2f%n", v, state,
                        ferry, plain, ferry / plain);
            }
        }
        if (!keep()) {
            deleteTree(model);
        }
    }

    // ---- offload folder reuse check ----------------------------------------------------------------------

    /**
     * What checking an offload folder before reusing it costs, against the load it belongs to: the 1.0 GB model
     * stored as bfloat16 (so the disk half is converted to float32 and written as .dat files), the last half of the
     * layers on disk in an offload folder. "load" is load_checkpoint_and_dispatch with the folder reused, resident
     * pages brought in; "reuse check" is OffloadFolder.openFor on the same folder (fingerprint of the checkpoint:
     * size, modification and inode change time, inode number and header SHA-256; the same stat of every file Ferry
     * wrote; the names of its marker and index confined to the folder; the index against the model), the part
     * of the load that decides to reuse. Warm page cache. Goal: under 2% of the load. The CRC32C of each .dat,
     * verified on its first read, is timed apart (against a plain touch of the same mapped bytes), since it is paid
     * during the first forward, not at load.
     */
    void reuse() {
        SyntheticCheckpoint.Shape shape = bigShape();
        DType stored = DType.fromTorch(opts.getOrDefault("dtype", "bfloat16"));
        Path model = SyntheticCheckpoint.write(dir.resolve("reuse-" + stored.torchName()), shape, stored, 4);
        Path offloadDir = dir.resolve("reuse-offload-" + stored.torchName());
        ModelConfig config = ModelConfig.read(model);
        int rounds = opt("loadRounds", 5);
        int layers = shape.layers();
        Samples s = new Samples();
        try (DjlBackend backend = new DjlBackend()) {
            DeviceMap halfDisk = blockMap(ModelFamilies.build(config, backend), layers, i -> i >= layers / 2 ? DISK : CPU);
            boolean[] reused = {false};
            Runnable load = () -> {
                try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(model)) {
                    CausalLM m = ModelFamilies.build(config, backend);
                    DispatchOptions d = DispatchOptions.of(halfDisk).withPreloadClasses(Set.of(LAYER))
                            .withPrefetchBlocks(0);
                    CheckpointDispatcher.Result r = new CheckpointDispatcher(backend, new Dispatcher(backend))
                            .loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(halfDisk).withDispatch(d)
                                    .withOffloadDir(offloadDir));
                    reused[0] = r.offloadFolderReused();
                    dispose(m);
                    r.close();
                }
            };
            load.run(); // writes the folder
            List<Path> files;
            try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(model)) {
                files = ckpt.files(); // the checkpoint is open anyway during a load: not part of the check
            }
            Map<String, TensorSpec> expected = new LinkedHashMap<>();
            long datBytes;
            try (OffloadFolder f = OffloadFolder.open(offloadDir)) {
                f.keys().forEach(k -> expected.put(k, f.spec(k)));
                datBytes = f.keys().stream().mapToLong(k -> f.spec(k).byteSize()).sum();
            }
            System.out.printf(Locale.ROOT, "%n## reuse: %s stored as %s, layers %d-%d on disk, offload folder of %d "
                    + "tensors (%.0f MB of .dat)%n", shape, stored.torchName(), layers / 2, layers - 1, expected.size(),
                    datBytes / 1e6);
            for (int r = -1; r < rounds; r++) {
                double[] t = Samples.time(1, load);
                if (!reused[0]) {
                    throw new IllegalStateException("the offload folder was not reused");
                }
                double[] c = Samples.time(1, () -> OffloadFolder.openFor(offloadDir, expected, files, false, w -> {
                    throw new IllegalStateException("the offload folder was not reused");
                }).folder().close());
                double[] crc = Samples.time(1, () -> {
                    try (OffloadFolder f = OffloadFolder.open(offloadDir)) {
                        f.keys().forEach(k -> f.bytes(k)); // first read of each: maps and verifies its CRC32C
                    }
                });
                double[] touch = Samples.time(1, () -> {
                    try (OffloadFolder f = OffloadFolder.open(offloadDir)) {
                        for (String k : f.keys()) {
                            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(
                                    offloadDir.resolve(k + ".dat"))) {
                                touch(ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, ch.size()));
                            } catch (IOException e) {
                                throw new UncheckedIOException(e);
                            }
                        }
                    }
                });
                if (r >= 0) {
                    s.add("load, offload folder reused", t);
                    s.add("reuse check (OffloadFolder.openFor)", c);
                    s.add("first read of every .dat, CRC32C verified", crc);
                    s.add("first read of every .dat, pages touched only", touch);
                }
            }
        }
        System.out.print(s.table("load, offload folder reused"));
        System.out.printf(Locale.ROOT, "  reuse check: %.2f%% of the load (%.1f ms of %.0f ms)%n",
                100 * s.median("reuse check (OffloadFolder.openFor)") / s.median("load, offload folder reused"),
                1e3 * s.median("reuse check (OffloadFolder.openFor)"), 1e3 * s.median("load, offload folder reused"));
        if (!keep()) {
            deleteTree(model);
            deleteTree(offloadDir);
        }
    }

    // ---- helpers ----------------------------------------------------------------------------------------

    private SyntheticCheckpoint.Shape bigShape() {
        return new SyntheticCheckpoint.Shape(opt("hidden", 1024), opt("intermediate", 2816), opt("layers", 16),
                opt("heads", 16), opt("kvHeads", 8), opt("vocab", 32000));
    }

    /** load_checkpoint_and_dispatch of a fresh model under {@code map}; offloaded blocks are preload units. */
    static CausalLM loaded(DjlBackend backend, ModelConfig config, SafetensorsCheckpoint ckpt, DeviceMap map,
                           int prefetch) {
        CausalLM m = ModelFamilies.build(config, backend);
        DispatchOptions d = DispatchOptions.of(map).withPreloadClasses(Set.of(LAYER)).withPrefetchBlocks(prefetch);
        new CheckpointDispatcher(backend, new Dispatcher(backend))
                .loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(map).withDispatch(d));
        return m;
    }

    /** The device map of a Llama model by top-level block: embeddings, each layer, norm, rotary, lm_head. */
    static DeviceMap blockMap(Module model, int layers, java.util.function.IntFunction<Device> layerDevice) {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed_tokens", CPU);
        for (int i = 0; i < layers; i++) {
            m.put("model.layers." + i, layerDevice.apply(i));
        }
        m.put("model.norm", CPU);
        m.put("model.rotary_emb", CPU);
        m.put("lm_head", CPU);
        return DeviceMap.of(m);
    }

    static void forward(CausalLM model, DjlTensor input) {
        try (DjlTensor out = model.logits(input, null)) {
            out.array().getFloat(0, 0, 0); // waits for the result (libtorch CPU ops are synchronous anyway)
        }
    }

    /** Removes hooks without reloading anything, stops prefetchers and frees every tensor. */
    static void dispose(Module model) {
        model.visit(m -> {
            if (m.hook() instanceof AlignDevicesHook h && h.config().prefetcher() != null) {
                h.config().prefetcher().close();
            }
            m.setHook(null);
        });
        model.namedTensors().values().forEach(TensorSlot::release);
    }

    static long touch(ByteBuffer b) {
        long sum = 0;
        for (int i = b.position(); i < b.limit(); i += 4096) {
            sum += b.get(i);
        }
        return sum;
    }

    static long[] tokenIds(int n, int vocab) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) {
            ids[i] = (i * 7919L + 13) % vocab;
        }
        return ids;
    }

    static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void deleteTree(Path p) {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            s.sorted(Comparator.reverseOrder()).forEach(q -> q.toFile().delete());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
