package dev.ferry.core.weights;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.testing.TestBackend;
import dev.ferry.core.testing.TestLayers.Stack;
import dev.ferry.core.testing.TestTensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

/**
 * A small model loaded through {@link CheckpointDispatcher} with half its layers on disk, in this JVM or in a
 * child JVM ({@link #main}), and snapshots of folders to prove which bytes changed.
 */
final class OffloadHarness {

    static final int WIDTH = 64;
    static final int LAYERS = 6;

    private OffloadHarness() {
    }

    static Stack onMeta(TestBackend backend) {
        Stack m = new Stack(backend, WIDTH, LAYERS, false, 99);
        m.namedTensors().values().forEach(TensorSlot::release);
        return m;
    }

    /** Layers 0-2 on the CPU, 3-5 on disk (read from the offload folder when one is given). */
    static DeviceMap map() {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed", Device.cpu());
        for (int i = 0; i < LAYERS; i++) {
            m.put("model.layers." + i, i < 3 ? Device.cpu() : Device.disk());
        }
        m.put("model.norm", Device.cpu());
        m.put("head", Device.cpu());
        return DeviceMap.of(m);
    }

    /**
     * Saves the model of {@code seed} in bfloat16, so disk-offloaded tensors are converted to the model's float32
     * and written to the offload folder as {@code .dat} files.
     */
    static Path saveBf16(Path file, long seed) {
        TestBackend backend = new TestBackend(0);
        Stack m = new Stack(backend, WIDTH, LAYERS, false, seed);
        SafetensorsWriter w = new SafetensorsWriter();
        m.namedTensors().forEach((n, s) -> {
            ByteBuffer bytes = DTypeConversion.convert(s.value().toBytes(), DType.FLOAT32, DType.BFLOAT16);
            w.add(n, s.spec().withDType(DType.BFLOAT16), bytes);
        });
        w.write(file);
        return file;
    }

    /** The output of the checkpoint loaded with everything resident: what every dispatched load must give. */
    static float[] residentOutput(Path checkpoint) {
        TestBackend backend = new TestBackend(0);
        Stack m = onMeta(backend);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(checkpoint)) {
            new CheckpointDispatcher(backend, new Dispatcher(backend))
                    .loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(DeviceMap.of(Map.of("", Device.cpu()))));
            return run(backend, m);
        }
    }

    /** Loads with the disk layers in {@code offloadDir} and runs; the result is closed before returning. */
    static Loaded load(Path checkpoint, Path offloadDir, boolean overwrite) {
        TestBackend backend = new TestBackend(0);
        Stack m = onMeta(backend);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(checkpoint)) {
            CheckpointDispatcher.Result r = new CheckpointDispatcher(backend, new Dispatcher(backend))
                    .loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(map()).withOffloadDir(offloadDir)
                            .withOverwriteOffloadDir(overwrite));
            try (r) {
                return new Loaded(run(backend, m), r.offloadFolderReused());
            } finally {
                Dispatcher.remove(m);
            }
        }
    }

    record Loaded(float[] output, boolean reused) {
    }

    static float[] run(TestBackend backend, Module m) {
        float[] x = new float[2 * WIDTH];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.sin(i * 0.37);
        }
        TestTensor in = backend.tensor(Device.cpu(), new long[] {2, WIDTH}, x);
        TestTensor out = (TestTensor) m.call(in);
        float[] v = out.data().clone();
        out.close();
        in.close();
        return v;
    }

    static String encode(float[] v) {
        StringBuilder sb = new StringBuilder();
        for (float f : v) {
            sb.append(sb.length() == 0 ? "" : ",").append(Integer.toHexString(Float.floatToRawIntBits(f)));
        }
        return sb.toString();
    }

    /**
     * A child JVM: {@code load CHECKPOINT DIR} loads and prints {@code OUT <floats>}; {@code slow-write CHECKPOINT
     * DIR} writes the folder one tensor every 200 ms, printing {@code WRITING} after the first, so it can be killed
     * half way.
     */
    public static void main(String[] args) throws Exception {
        Path checkpoint = Path.of(args[1]);
        Path dir = Path.of(args[2]);
        switch (args[0]) {
            case "load" -> {
                Loaded l = load(checkpoint, dir, false);
                System.out.println("OUT " + encode(l.output()) + " REUSED " + l.reused());
            }
            case "slow-write" -> {
                try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(checkpoint)) {
                    List<String> keys = ckpt.keys().stream().filter(k -> k.startsWith("model.layers.")).toList();
                    Map<String, TensorSpec> expected = new LinkedHashMap<>();
                    keys.forEach(k -> expected.put(k, ckpt.spec(k)));
                    OffloadFolder.openFor(dir, expected, ckpt.files(), false, w -> {
                        w.plan(expected);
                        for (String k : keys) {
                            w.putFrom(ckpt, k);
                            System.out.println("WRITING " + k);
                            System.out.flush();
                            try {
                                Thread.sleep(200);
                            } catch (InterruptedException e) {
                                throw new IllegalStateException(e);
                            }
                        }
                    });
                }
                System.out.println("DONE");
            }
            default -> throw new IllegalArgumentException(args[0]);
        }
        System.out.flush();
    }

    /** Starts {@link #main} in a new JVM with this test's class path. */
    static Process child(String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("-Xmx256m");
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add(OffloadHarness.class.getName());
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).start();
    }

    // ------------------------------------------------------------------ snapshots

    /**
     * Every path under {@code root} (links not followed) to what it is: a link and its target, a folder, or a file's
     * SHA-256, size and permissions.
     */
    static Map<String, String> snapshot(Path root) {
        Map<String, String> out = new TreeMap<>();
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes a) {
                    out.put(root.relativize(d).toString(), "dir");
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                    String rel = root.relativize(f).toString();
                    if (a.isSymbolicLink()) {
                        out.put(rel, "link->" + Files.readSymbolicLink(f));
                    } else if (!a.isRegularFile()) {
                        out.put(rel, "other"); // a FIFO or device: never opened, a read could block forever
                    } else {
                        out.put(rel, "file " + a.size() + " " + sha256(f) + " "
                                + PosixFilePermissions.toString(Files.getPosixFilePermissions(f, LinkOption.NOFOLLOW_LINKS))
                                + " " + a.lastModifiedTime().to(TimeUnit.NANOSECONDS));
                    }
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** {@code snapshot} without the files Ferry owns in {@code folder} (those its marker lists, the marker, the lock). */
    static Map<String, String> withoutFerrysFiles(Map<String, String> snapshot, Path root, Path folder) {
        Set<String> own = new TreeSet<>(List.of(OffloadMarker.NAME, FolderLock.NAME));
        OffloadMarker marker = OffloadMarker.read(folder);
        if (marker != null) {
            own.addAll(marker.owned());
        }
        Map<String, String> out = new TreeMap<>(snapshot);
        for (String n : own) {
            out.remove(root.relativize(folder.resolve(n)).toString());
        }
        // the folder's own entry changes when Ferry adds a file to it
        out.remove(root.relativize(folder).toString());
        return out;
    }

    static String sha256(Path f) throws IOException {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
