package dev.ferry.core.dispatch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.hook.Hooks;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.TestBackend;
import dev.ferry.core.testing.TestLayers.Stack;
import dev.ferry.core.testing.TestTensor;
import dev.ferry.core.weights.HostMemoryStore;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Dispatching a computing model on the test backend: same numbers, counted transfers, no leaks, all or nothing. */
class DispatchTest {

    private static final Device GPU0 = Device.accelerator(0);
    private static final Device GPU1 = Device.accelerator(1);
    private static final Device CPU = Device.cpu();
    private static final Device DISK = Device.disk();
    private static final int WIDTH = 6;

    private final TestBackend backend = new TestBackend(2);
    private final Dispatcher dispatcher = new Dispatcher(backend);

    private Stack model(boolean tied) {
        return new Stack(backend, WIDTH, 4, tied, 7);
    }

    private TestTensor input() {
        float[] x = new float[3 * WIDTH];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.sin(i);
        }
        return backend.tensor(CPU, new long[] {3, WIDTH}, x);
    }

    private float[] run(Module m) {
        TestTensor in = input();
        TestTensor out = (TestTensor) m.call(in);
        assertThat(out.device()).isEqualTo(CPU);
        float[] v = out.data().clone();
        out.close();
        in.close();
        return v;
    }

    private static DeviceMap map(Device embed, Device l0, Device l1, Device l2, Device l3, Device head) {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed", embed);
        m.put("model.layers.0", l0);
        m.put("model.layers.1", l1);
        m.put("model.layers.2", l2);
        m.put("model.layers.3", l3);
        m.put("model.norm", head);
        m.put("head", head);
        return DeviceMap.of(m);
    }

    @Test
    void dispatchedAcrossTwoAcceleratorsGivesTheUndispatchedNumbers() {
        Stack m = model(false);
        float[] expected = run(m);
        dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, GPU0, GPU1, GPU1, GPU1)));
        assertThat(run(m)).containsExactly(expected);
        assertThat(m.find("model.layers.3.mlp.fc2").tensor("weight").device()).isEqualTo(GPU1);
    }

    @Test
    void residentForwardMovesOnlyTheInputInAndTheOutputBack() {
        Stack m = model(false);
        dispatcher.dispatch(m, DispatchOptions.of(DeviceMap.single(GPU0)).withPreloadClasses(Set.of("TestBlock")));
        backend.resetCounters();
        run(m);
        assertThat(backend.transfers()).isEqualTo(2);
    }

    @Test
    void cpuAndDiskOffloadWithAndWithoutPreloadGiveTheSameNumbers() {
        float[] expected = run(model(false));
        for (Set<String> preload : java.util.List.of(Set.<String>of(), Set.of("TestBlock"), Set.of("TestMLP"))) {
            Stack m = model(false);
            HostMemoryStore disk = new HostMemoryStore();
            m.find("model.layers.3").namedTensors().forEach((n, s) ->
                    disk.put("model.layers.3." + n, s.spec(), s.value().toBytes()));
            dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, CPU, CPU, DISK, GPU0))
                    .withPreloadClasses(preload).withOffloadStore(disk));
            assertThat(run(m)).as("preload %s", preload).containsExactly(expected);
            assertThat(m.find("model.layers.2.attn").tensor("weight").isMaterialised()).isFalse();
            assertThat(m.find("model.layers.3.mlp.fc1").tensor("weight").isMaterialised()).isFalse();
        }
    }

    @Test
    void offloadedBlocksLoadTheirWeightsPerForwardAndFreeThem() {
        Stack m = model(false);
        dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, GPU0, CPU, CPU, GPU0))
                .withPreloadClasses(Set.of("TestBlock")).withPrefetchBlocks(0));
        run(m);
        int live = backend.live();
        int created = backend.created();
        run(m);
        // per forward: two blocks × 6 tensors loaded, plus inputs/outputs/activations made and freed
        assertThat(backend.created() - created).isGreaterThanOrEqualTo(12);
        for (int i = 0; i < 100; i++) {
            run(m);
        }
        assertThat(backend.live()).isEqualTo(live);
    }

    @Test
    void prefetchKeepsAtMostOneBlockAheadAliveAndTheSameNumbers() {
        float[] expected = run(model(false));
        Stack m = model(false);
        dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, CPU, DISK, CPU, GPU0))
                .withPreloadClasses(Set.of("TestBlock")).withPrefetchBlocks(1));
        java.util.IntSummaryStatistics live = new java.util.IntSummaryStatistics();
        for (int i = 0; i < 100; i++) {
            assertThat(run(m)).containsExactly(expected);
            live.accept(backend.live());
        }
        // the block fetched for the next forward may be in flight or done (0 or 6 tensors); nothing else stays
        assertThat(live.getMax() - live.getMin()).isLessThanOrEqualTo(6);
        Dispatcher.remove(m);
        assertThat(m.find("model.layers.2.attn").tensor("weight").device()).isEqualTo(CPU);
    }

    @Test
    void tiedHeadAndEmbeddingShareOneTensor() {
        Stack m = model(true);
        float[] expected = run(m);
        dispatcher.dispatch(m, DispatchOptions.of(map(CPU, GPU0, GPU0, GPU0, GPU0, CPU)));
        assertThat(m.find("head").tensor("weight")).isSameAs(m.find("model.embed").tensor("weight"));
        assertThat(run(m)).containsExactly(expected);
    }

    @Test
    void theWholeModelOffloadedToCpuRunsOnTheCpuAsResident() {
        Stack m = model(false);
        float[] expected = run(m);
        DispatchReport r = dispatcher.dispatch(m, DispatchOptions.of(DeviceMap.single(CPU)));
        assertThat(r.mainDevice()).isEqualTo(CPU);
        assertThat(run(m)).containsExactly(expected);
    }

    @Test
    void anAbsentAcceleratorIsAnErrorBeforeAnyHookIsAttached() {
        Stack m = new Stack(new TestBackend(1), WIDTH, 4, false, 7);
        Dispatcher oneGpu = new Dispatcher(new TestBackend(1));
        assertThatThrownBy(() -> oneGpu.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, GPU0, GPU1, GPU1, GPU1))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("gpu1")
                .hasMessageContaining("model.layers.2");
        assertThat(Hooks.countHooked(m)).isZero();
    }

    @Test
    void aDispatchThatFailsPartWayLeavesTheModelAsItWas() {
        TestBackend liar = new TestBackend(1) {
            @Override
            public boolean isAvailable(Device device) {
                return true; // claims gpu1, then fails when a tensor moves there
            }
        };
        Stack m = new Stack(liar, WIDTH, 4, false, 7);
        TestTensor in = liar.tensor(CPU, new long[] {1, WIDTH}, 1, 2, 3, 4, 5, 6);
        TestTensor before = (TestTensor) m.call(in);
        assertThatThrownBy(() -> new Dispatcher(liar).dispatch(m,
                DispatchOptions.of(map(GPU0, GPU0, CPU, GPU1, GPU1, GPU0)))).hasMessageContaining("gpu1");
        assertThat(Hooks.countHooked(m)).isZero();
        m.namedTensors().forEach((n, s) -> assertThat(s.device()).as(n).isEqualTo(CPU));
        TestTensor after = (TestTensor) m.call(in);
        assertThat(after.data()).containsExactly(before.data());
    }

    @Test
    void dispatchingTwiceIsRefusedNamingTheHookedModules() {
        Stack m = model(false);
        dispatcher.dispatch(m, DispatchOptions.of(DeviceMap.single(GPU0)));
        assertThatThrownBy(() -> dispatcher.dispatch(m, DispatchOptions.of(DeviceMap.single(GPU0))))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("already dispatched");
    }

    @Test
    void removingTheDispatchBringsOffloadedWeightsBack() {
        Stack m = model(false);
        float[] expected = run(m);
        dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, CPU, CPU, CPU, CPU, GPU0)));
        Dispatcher.remove(m);
        assertThat(m.find("model.layers.1.attn").tensor("weight").device()).isEqualTo(CPU);
        assertThat(m.find("head").tensor("weight").device()).isEqualTo(CPU);
        assertThat(run(m)).containsExactly(expected);
    }

    @Test
    void offloadedTensorsMissingEverywhereAreNamed() {
        Stack m = model(false);
        m.find("model.layers.3.attn").tensor("bias").release();
        assertThatThrownBy(() -> dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, GPU0, GPU0, DISK, GPU0))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("model.layers.3.attn.bias");
        assertThat(Hooks.countHooked(m)).isZero();
    }

    @Test
    void anOffloadStoreInAnotherDtypeIsConvertedToTheModelsDtypeWhenLoaded() {
        Stack m = model(false);
        HostMemoryStore halfPrecision = new HostMemoryStore();
        m.find("model.layers.3").namedTensors().forEach((n, s) -> halfPrecision.put("model.layers.3." + n,
                s.spec().withDType(DType.FLOAT16), DTypeConversion.convert(s.value().toBytes(), DType.FLOAT32,
                        DType.FLOAT16)));
        float w = ((TestTensor) m.find("model.layers.3.attn").tensor("weight").value()).data()[1];
        dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, GPU0, GPU0, DISK, GPU0))
                .withOffloadStore(halfPrecision).withPrefetchBlocks(0));
        float[] loaded = new float[1];
        Hooks.add(m.find("model.layers.3.attn"), new dev.ferry.core.hook.ModelHook() {
            @Override
            public Object[] preForward(Module module, Object[] args) {
                loaded[0] = ((TestTensor) module.tensor("weight").value()).data()[1];
                return args;
            }
        }, true);
        run(m);
        assertThat(loaded[0]).isEqualTo(DTypeConversion.halfToFloat(DTypeConversion.floatToHalf(w)));
    }

    @Test
    void hostCopiesOfCpuOffloadedBlocksArePageLockedUntilTheDispatchIsRemoved() {
        Stack m = model(false);
        float[] expected = run(m);
        dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, CPU, CPU, GPU0, GPU0)));
        long offloaded = m.find("model.layers.1").byteSize() + m.find("model.layers.2").byteSize();
        assertThat(backend.locking().buffers().stream().mapToLong(java.nio.ByteBuffer::limit).sum())
                .isEqualTo(offloaded);
        assertThat(run(m)).containsExactly(expected);
        Dispatcher.remove(m);
        assertThat(backend.locking().buffers()).isEmpty();
        assertThat(m.find("model.layers.1.mlp.fc1").tensor("weight").device()).isEqualTo(CPU);
        assertThat(run(m)).containsExactly(expected);
    }

    @Test
    void aTiedTensorResidentWithOneModuleIsSharedByItsOffloadedPartner() {
        Stack m = model(true);
        float[] expected = run(m);
        dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, GPU0, CPU, CPU, CPU)));
        assertThat(run(m)).containsExactly(expected);
        assertThat(m.find("model.embed").tensor("weight").device()).isEqualTo(GPU0);
        assertThat(run(m)).containsExactly(expected);
    }

    @Test
    void tiedModulesOnTwoAcceleratorsEachUseACopyOnTheirOwnDevice() {
        Stack m = model(true);
        float[] expected = run(m);
        dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, GPU0, GPU1, GPU1, GPU1)));
        int[] seenOn = {-1};
        Hooks.add(m.find("head"), new dev.ferry.core.hook.ModelHook() {
            @Override
            public Object[] preForward(Module module, Object[] args) {
                seenOn[0] = module.tensor("weight").device().index();
                return args;
            }
        }, true);
        assertThat(run(m)).containsExactly(expected);
        assertThat(seenOn[0]).isEqualTo(1);
        // the home tensor stays with the embedding, on gpu0, between forwards
        assertThat(m.find("model.embed").tensor("weight").device()).isEqualTo(GPU0);
        assertThat(m.find("head").tensor("weight")).isSameAs(m.find("model.embed").tensor("weight"));
        assertThat(run(m)).containsExactly(expected);
    }

    @Test
    void removingADispatchOfTiedModulesOnTwoAcceleratorsFreesTheCopy() {
        Stack m = model(true);
        float[] expected = run(m);
        int before = backend.live();
        dispatcher.dispatch(m, DispatchOptions.of(map(GPU0, GPU0, GPU0, GPU1, GPU1, GPU1)));
        assertThat(run(m)).containsExactly(expected);
        Dispatcher.remove(m);
        assertThat(backend.live()).isEqualTo(before);
        assertThat(m.find("model.embed").tensor("weight").device()).isEqualTo(CPU);
        assertThat(run(m)).containsExactly(expected);
    }

    @Test
    void removingADispatchWithBothTiedModulesOffloadedBringsTheSharedTensorBackOnce() {
        Stack m = model(true);
        float[] expected = run(m);
        dispatcher.dispatch(m, DispatchOptions.of(map(CPU, GPU0, GPU0, GPU0, GPU0, CPU)));
        assertThat(run(m)).containsExactly(expected);
        Dispatcher.remove(m);
        assertThat(m.find("model.embed").tensor("weight").device()).isEqualTo(CPU);
        assertThat(m.find("head").tensor("weight")).isSameAs(m.find("model.embed").tensor("weight"));
        assertThat(run(m)).containsExactly(expected);
    }
}
