package dev.ferry.core.dispatch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.hook.Hooks;
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
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.SafetensorsWriter;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** load_checkpoint_and_dispatch: each tensor from its file straight to where its block is mapped. */
class CheckpointDispatcherTest {

    private static final Device GPU0 = Device.accelerator(0);
    private static final Device CPU = Device.cpu();
    private static final Device DISK = Device.disk();
    private static final int WIDTH = 16;
    private static final int LAYERS = 8;

    @TempDir
    Path dir;

    private final TestBackend backend = new TestBackend(1);
    private final CheckpointDispatcher loader = new CheckpointDispatcher(backend, new Dispatcher(backend));

    private Stack reference() {
        return new Stack(backend, WIDTH, LAYERS, true, 11);
    }

    /** The same architecture with every tensor on meta, as a model family builds it before loading. */
    private Stack onMeta() {
        Stack m = new Stack(backend, WIDTH, LAYERS, true, 99);
        m.namedTensors().values().forEach(TensorSlot::release);
        return m;
    }

    /** Saves like save_pretrained: a tied tensor once, under its first name. */
    private Path save(Stack m, DType dtype) {
        SafetensorsWriter w = new SafetensorsWriter();
        m.namedTensors().forEach((n, s) -> {
            ByteBuffer bytes = s.value().toBytes();
            TensorSpec spec = s.spec();
            if (dtype != DType.FLOAT32) {
                bytes = DTypeConversion.convert(bytes, DType.FLOAT32, dtype);
                spec = spec.withDType(dtype);
            }
            w.add(n, spec, bytes);
        });
        Path file = dir.resolve("model.safetensors");
        w.write(file);
        return file;
    }

    private float[] run(Module m) {
        float[] x = new float[2 * WIDTH];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.cos(i);
        }
        TestTensor in = backend.tensor(CPU, new long[] {2, WIDTH}, x);
        TestTensor out = (TestTensor) m.call(in);
        float[] v = out.data().clone();
        out.close();
        in.close();
        return v;
    }

    private static DeviceMap mixed() {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed", GPU0);
        for (int i = 0; i < LAYERS; i++) {
            m.put("model.layers." + i, i < 2 ? GPU0 : i < 4 ? CPU : DISK);
        }
        m.put("model.norm", GPU0);
        m.put("head", GPU0);
        return DeviceMap.of(m);
    }

    @Test
    void loadedAndDispatchedModelGivesTheReferenceNumbers() {
        Stack ref = reference();
        float[] expected = run(ref);
        Stack m = onMeta();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(save(ref, DType.FLOAT32))) {
            CheckpointDispatcher.Result r = loader.loadAndDispatch(m, ckpt,
                    CheckpointDispatcher.Options.of(mixed()).withDispatch(DispatchOptions.of(mixed())
                            .withPreloadClasses(Set.of("TestBlock"))));
            assertThat(run(m)).containsExactly(expected);
            assertThat(r.unexpectedKeys()).isEmpty();
            assertThat(m.find("model.layers.5.mlp.fc1").tensor("weight").isMaterialised()).isFalse();
            assertThat(m.find("model.layers.0.mlp.fc1").tensor("weight").device()).isEqualTo(GPU0);
        }
    }

    @Test
    void eachBlockGoesWhereItIsMappedAndDiskBlocksStayInTheFile() {
        Stack ref = reference();
        long block = ref.find("model.layers.0").byteSize();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(save(ref, DType.FLOAT32))) {
            CheckpointDispatcher.Result r = loader.loadAndDispatch(onMeta(), ckpt, CheckpointDispatcher.Options.of(mixed()));
            assertThat(r.hostOffloadBytes()).isEqualTo(2 * block);
            assertThat(r.diskOffloadBytes()).isEqualTo(4 * block);
            long resident = 2 * block + ref.find("model.embed").byteSize() + ref.find("model.norm").byteSize()
                    + ref.find("head").byteSize() - ref.find("model.embed").tensor("weight").byteSize();
            assertThat(r.bytesPerDevice()).containsExactly(Map.entry(GPU0, resident));
        }
    }

    @Test
    void cpuOffloadedBlocksArePageLockedFromLoadUntilTheModelIsRemoved() {
        Stack ref = reference();
        float[] expected = run(ref);
        Stack m = onMeta();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(save(ref, DType.FLOAT32))) {
            CheckpointDispatcher.Result r = loader.loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(mixed()));
            // every tensor of the two blocks offloaded to CPU memory (main device gpu0) sits in locked memory
            assertThat(backend.locking().buffers().stream().mapToLong(java.nio.ByteBuffer::limit).sum())
                    .isEqualTo(r.hostOffloadBytes());
            assertThat(run(m)).containsExactly(expected);
            Dispatcher.remove(m);
            assertThat(backend.locking().buffers()).isEmpty();
            r.close();
        }
    }

    @Test
    void loadingHoldsNoMoreThanTheResidentBlocksPlusOneBlockInFlight() {
        Stack ref = reference();
        long block = ref.find("model.layers.0").byteSize();
        Path file = save(ref, DType.FLOAT32);
        ref.namedTensors().values().forEach(TensorSlot::release);
        Stack m = onMeta();
        backend.resetPeak();
        long before = backend.peakBytes();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(file)) {
            CheckpointDispatcher.Result r = loader.loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(mixed()));
            long resident = r.bytesPerDevice().get(GPU0);
            long checkpointBytes = ckpt.keys().stream().mapToLong(k -> ckpt.spec(k).byteSize()).sum();
            // the first offloaded block may already be fetched ahead for the first forward
            assertThat(backend.peakBytes() - before).isBetween(resident, resident + block)
                    .isLessThan(checkpointBytes / 2);
        }
    }

    @Test
    void withoutPrefetchLoadingHoldsExactlyTheResidentBlocks() {
        Stack ref = reference();
        Path file = save(ref, DType.FLOAT32);
        ref.namedTensors().values().forEach(TensorSlot::release);
        Stack m = onMeta();
        backend.resetPeak();
        long before = backend.peakBytes();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(file)) {
            CheckpointDispatcher.Result r = loader.loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(mixed())
                    .withDispatch(DispatchOptions.of(mixed()).withPrefetchBlocks(0)));
            assertThat(backend.peakBytes() - before).isEqualTo(r.bytesPerDevice().get(GPU0));
        }
    }

    @Test
    void bfloat16CheckpointIsConvertedToTheModelDtypeOnLoad() {
        Stack ref = reference();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(save(ref, DType.BFLOAT16))) {
            Stack m = onMeta();
            loader.loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(mixed()));
            float w = ((TestTensor) m.find("model.layers.0.attn").tensor("weight").value()).data()[0];
            float original = ((TestTensor) ref.find("model.layers.0.attn").tensor("weight").value()).data()[0];
            assertThat(w).isEqualTo(DTypeConversion.bf16ToFloat(DTypeConversion.floatToBf16(original)));
            assertThat(run(m)).hasSize(2 * WIDTH);
        }
    }

    @Test
    void missingTensorsAreNamedAndNothingIsLoaded() {
        Stack partial = new Stack(backend, WIDTH, LAYERS, true, 11);
        SafetensorsWriter w = new SafetensorsWriter();
        partial.namedTensors().forEach((n, s) -> {
            if (!n.equals("model.layers.6.mlp.fc2.bias")) {
                w.add(n, s.spec(), s.value().toBytes());
            }
        });
        w.write(dir.resolve("model.safetensors"));
        Stack m = onMeta();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir.resolve("model.safetensors"))) {
            assertThatThrownBy(() -> loader.loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(mixed())))
                    .hasMessageContaining("model.layers.6.mlp.fc2.bias");
        }
        assertThat(m.namedTensors().values()).noneMatch(TensorSlot::isMaterialised);
        assertThat(Hooks.countHooked(m)).isZero();
    }

    @Test
    void shapeMismatchNamesTheTensorAndBothShapes() {
        SafetensorsWriter w = new SafetensorsWriter();
        Stack ref = reference();
        ref.namedTensors().forEach((n, s) -> {
            if (n.equals("head.bias")) {
                w.add(n, TensorSpec.of(DType.FLOAT32, WIDTH + 1), ByteBuffer.allocate((WIDTH + 1) * 4));
            } else {
                w.add(n, s.spec(), s.value().toBytes());
            }
        });
        w.write(dir.resolve("model.safetensors"));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir.resolve("model.safetensors"))) {
            assertThatThrownBy(() -> loader.loadAndDispatch(onMeta(), ckpt, CheckpointDispatcher.Options.of(mixed())))
                    .hasMessageContaining("head.bias").hasMessageContaining("[17]").hasMessageContaining("[16]");
        }
    }

    @Test
    void unexpectedKeysAreReportedOrRejectedWhenStrict() {
        Stack ref = reference();
        SafetensorsWriter w = new SafetensorsWriter();
        ref.namedTensors().forEach((n, s) -> w.add(n, s.spec(), s.value().toBytes()));
        w.add("model.extra.weight", TensorSpec.of(DType.FLOAT32, 2), ByteBuffer.allocate(8));
        w.write(dir.resolve("model.safetensors"));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir.resolve("model.safetensors"))) {
            assertThat(loader.loadAndDispatch(onMeta(), ckpt, CheckpointDispatcher.Options.of(mixed())).unexpectedKeys())
                    .containsExactly("model.extra.weight");
            assertThatThrownBy(() -> loader.loadAndDispatch(onMeta(), ckpt,
                    CheckpointDispatcher.Options.of(mixed()).withStrict(true))).hasMessageContaining("model.extra.weight");
        }
    }

    @Test
    void diskBlocksGoToTheOffloadFolderInTheModelDtype() {
        Stack ref = reference();
        float[] expected = run(ref);
        Path offload = dir.resolve("offload");
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(save(ref, DType.FLOAT32))) {
            Stack m = onMeta();
            loader.loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(mixed()).withOffloadDir(offload));
            assertThat(run(m)).containsExactly(expected);
            try (OffloadFolder folder = OffloadFolder.open(offload, List.of(dir))) {
                assertThat(folder.keys()).contains("model.layers.4.attn.weight", "model.layers.7.mlp.fc2.bias")
                        .doesNotContain("model.layers.3.attn.weight", "head.bias");
                // already float32 in the checkpoint: referenced in place, no second copy
                assertThat(folder.entry("model.layers.4.attn.weight")).isInstanceOf(OffloadFolder.SafetensorsEntry.class);
            }
        }
    }

    @Test
    void aConvertedTensorIsWrittenToTheOffloadFolderInTheModelDtype() {
        Stack ref = reference();
        Path offload = dir.resolve("offload");
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(save(ref, DType.BFLOAT16))) {
            Stack m = onMeta();
            loader.loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(mixed()).withOffloadDir(offload));
            assertThat(run(m)).hasSize(2 * WIDTH);
            try (OffloadFolder folder = OffloadFolder.open(offload, List.of(dir))) {
                assertThat(folder.entry("model.layers.4.attn.weight")).isInstanceOf(OffloadFolder.DatEntry.class);
                assertThat(folder.spec("model.layers.4.attn.weight").dtype()).isEqualTo(DType.FLOAT32);
            }
        }
    }

    @Test
    void aForeignStaleOffloadFolderIsRewrittenOnlyWhenOverwriteIsAllowed() throws Exception {
        Path offload = dir.resolve("offload");
        java.nio.file.Files.createDirectories(offload);
        java.nio.file.Files.writeString(offload.resolve("index.json"),
                "{\"model.layers.4.attn.weight\": {\"dtype\": \"float32\", \"shape\": [3, 3]}}");
        Stack ref = reference();
        float[] expected = run(ref);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(save(ref, DType.FLOAT32))) {
            Stack m = onMeta();
            assertThatThrownBy(() -> loader.loadAndDispatch(onMeta(), ckpt,
                    CheckpointDispatcher.Options.of(mixed()).withOffloadDir(offload)))
                    .isInstanceOf(dev.ferry.core.weights.OffloadFolderRefusedException.class);
            loader.loadAndDispatch(m, ckpt, CheckpointDispatcher.Options.of(mixed()).withOffloadDir(offload)
                    .withOverwriteOffloadDir(true));
            assertThat(run(m)).containsExactly(expected);
        }
        try (OffloadFolder folder = OffloadFolder.open(offload, List.of(dir))) {
            assertThat(folder.spec("model.layers.4.attn.weight").shape()).containsExactly(WIDTH, WIDTH);
        }
    }
}
