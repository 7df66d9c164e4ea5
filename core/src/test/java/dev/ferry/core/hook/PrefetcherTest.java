package dev.ferry.core.hook;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.TestBackend;
import dev.ferry.core.testing.TestLayers.Stack;
import dev.ferry.core.testing.TestTensor;
import dev.ferry.core.weights.HostMemoryStore;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.Tensor;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class PrefetcherTest {

    private static final Device GPU0 = Device.accelerator(0);
    private final TestBackend backend = new TestBackend(1);

    private float[] run(Module m) {
        TestTensor in = backend.tensor(Device.cpu(), new long[] {1, 4}, 1, 2, 3, 4);
        TestTensor out = (TestTensor) m.call(in);
        float[] v = out.data().clone();
        out.close();
        in.close();
        return v;
    }

    private Prefetcher<Map<TensorSlot, Tensor>> offloadBlocks(Stack m, int ahead) {
        HostMemoryStore store = HooksTest.storeOf(m);
        Prefetcher<Map<TensorSlot, Tensor>> p = AlignDevicesHook.blockPrefetcher(ahead);
        for (int i = 0; i < 4; i++) {
            Hooks.add(m.find("model.layers." + i), new AlignDevicesHook(new AlignDevicesHook.Config(GPU0, true, false,
                    true, false, Set.of(), store, backend, p)));
        }
        for (String resident : new String[] {"model.embed", "model.norm", "head"}) {
            Hooks.add(m.find(resident), new AlignDevicesHook(new AlignDevicesHook.Config(GPU0, false, false, true, false,
                    Set.of(), null, null)));
        }
        Hooks.add(m, new AlignDevicesHook(new AlignDevicesHook.Config(GPU0, false, true, false, false, Set.of(),
                null, null)));
        return p;
    }

    @Test
    void everyBlockButTheVeryFirstIsServedFromThePrefetch() {
        Stack m = new Stack(backend, 4, 4, false, 5);
        float[] expected = run(m);
        Prefetcher<?> p = offloadBlocks(m, 1);
        for (int i = 0; i < 10; i++) {
            assertThat(run(m)).containsExactly(expected);
        }
        assertThat(p.misses()).isEqualTo(1);
        assertThat(p.hits()).isEqualTo(39);
    }

    @Test
    void closingFreesWhatWasFetchedAndNotUsed() {
        Stack m = new Stack(backend, 4, 4, false, 5);
        int before = backend.live();
        Prefetcher<?> p = offloadBlocks(m, 2);
        run(m);
        p.close();
        Hooks.remove(m, true);
        assertThat(backend.live()).isEqualTo(before);
        assertThat(run(m)).hasSize(4);
    }

    @Test
    void startingFetchesTheFirstBlockBeforeTheFirstForward() {
        Stack m = new Stack(backend, 4, 4, false, 5);
        float[] expected = run(m);
        Prefetcher<?> p = offloadBlocks(m, 1);
        p.start();
        assertThat(run(m)).containsExactly(expected);
        assertThat(p.misses()).isZero();
        assertThat(p.hits()).isEqualTo(4);
        p.close();
    }

    /** A prefetcher over blocks of the given sizes whose preparation records its index; nothing to release. */
    private static Prefetcher<Integer> sized(int ahead, java.util.List<Integer> prepared, long... bytes) {
        Prefetcher<Integer> p = new Prefetcher<>(ahead, x -> { });
        for (int i = 0; i < bytes.length; i++) {
            int index = i;
            p.register(() -> {
                synchronized (prepared) {
                    prepared.add(index);
                }
                return index;
            }, bytes[i]);
        }
        return p;
    }

    @Test
    void blocksSmallerThanTheLargestGoFurtherAheadWithinBlocksAheadTimesItsBytes() {
        // a 100-byte head and 10-byte layers, 1 ahead: after the head, four layers fit in its 100 bytes, not five
        java.util.List<Integer> prepared = new java.util.ArrayList<>();
        Prefetcher<Integer> p = sized(1, prepared, 10, 10, 10, 10, 10, 10, 100);
        assertThat(p.take(6)).isNull();
        p.settle();
        assertThat(p.prepared()).isEqualTo(6); // 6 × 10 bytes: everything up to the head again
        assertThat(p.take(0)).isZero();
        p.settle();
        assertThat(prepared).containsExactly(0, 1, 2, 3, 4, 5);
        assertThat(p.prepared()).isEqualTo(5); // the head (100) does not fit beside layers 1-5 (50)
        p.close();
    }

    @Test
    void theLargestBlockIsStillFetchedAheadAlone() {
        java.util.List<Integer> prepared = new java.util.ArrayList<>();
        Prefetcher<Integer> p = sized(1, prepared, 10, 10, 100);
        assertThat(p.take(0)).isNull();
        p.settle();
        assertThat(p.prepared()).isEqualTo(1); // layer 1 (10), then the head would make 110
        assertThat(p.take(1)).isEqualTo(1);
        p.settle();
        assertThat(prepared).containsExactly(1, 2);
        assertThat(p.prepared()).isEqualTo(1);
        p.close();
    }

    @Test
    void blocksWithoutSizesAreCountedAsBefore() {
        java.util.List<Integer> prepared = new java.util.ArrayList<>();
        Prefetcher<Integer> p = sized(2, prepared, 0, 0, 0, 0, 0);
        assertThat(p.take(0)).isNull();
        p.settle();
        assertThat(p.prepared()).isEqualTo(2);
        assertThat(prepared).containsExactlyInAnyOrder(1, 2);
        p.close();
    }
}
