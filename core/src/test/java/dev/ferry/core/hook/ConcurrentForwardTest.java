package dev.ferry.core.hook;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.TestBackend;
import dev.ferry.core.testing.TestLayers.Stack;
import dev.ferry.core.testing.TestTensor;
import dev.ferry.core.weights.HostMemoryStore;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A dispatched model called from several threads at once, on the test backend: the hooks of one dispatch share
 * one forward lock, so concurrent calls give the single-threaded numbers, and a forward that throws gives back
 * what its hooks took (the weights it loaded, a tied tensor's home, the lock), so the next call works.
 */
class ConcurrentForwardTest {

    private static final Device GPU0 = Device.accelerator(0);
    private static final Device GPU1 = Device.accelerator(1);
    private static final Device CPU = Device.cpu();
    private static final Device DISK = Device.disk();
    private static final int WIDTH = 6;

    private final TestBackend backend = new TestBackend(2);
    private final Dispatcher dispatcher = new Dispatcher(backend);

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
        float[] v = out.data().clone();
        out.close();
        in.close();
        return v;
    }

    /** Blocks 1 and 3 and the embedding offloaded (CPU memory, disk), the rest resident on accelerator 0. */
    private Stack dispatched(int prefetch) {
        Stack m = new Stack(backend, WIDTH, 4, false, 11);
        HostMemoryStore disk = new HostMemoryStore();
        m.find("model.layers.3").namedTensors().forEach((n, s) ->
                disk.put("model.layers.3." + n, s.spec(), s.value().toBytes()));
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("model.embed", CPU);
        map.put("model.layers.0", GPU0);
        map.put("model.layers.1", CPU);
        map.put("model.layers.2", GPU0);
        map.put("model.layers.3", DISK);
        map.put("model.norm", GPU0);
        map.put("head", GPU0);
        dispatcher.dispatch(m, DispatchOptions.of(DeviceMap.of(map)).withPreloadClasses(Set.of("TestBlock"))
                .withOffloadStore(disk).withPrefetchBlocks(prefetch));
        return m;
    }

    @Test
    void eightThreadsGetTheSingleThreadedNumbers() throws Exception {
        float[] expected = run(new Stack(backend, WIDTH, 4, false, 11));
        Stack m = dispatched(1);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<List<float[]>>> futures = new ArrayList<>();
        try {
            for (int t = 0; t < 8; t++) {
                futures.add(pool.submit(() -> {
                    go.await();
                    List<float[]> out = new ArrayList<>();
                    for (int i = 0; i < 200; i++) {
                        out.add(run(m));
                    }
                    return out;
                }));
            }
            go.countDown();
            for (Future<List<float[]>> f : futures) {
                assertThat(f.get(1, TimeUnit.MINUTES)).hasSize(200)
                        .allSatisfy(v -> assertThat(v).containsExactly(expected));
            }
        } finally {
            pool.shutdownNow();
            pool.awaitTermination(1, TimeUnit.MINUTES);
        }
        assertThat(m.find("model.layers.3.attn").tensor("weight").isMaterialised()).isFalse();
        assertThat(m.find("model.embed").tensor("weight").isMaterialised()).isFalse();
    }

    @Test
    void aForwardThatThrowsFreesWhatItLoadedAndLetsOtherThreadsIn() throws Exception {
        Stack m = dispatched(0);
        float[] expected = run(m);
        int live = backend.live();
        // the offloaded embedding loads its weights, then its forward fails on an argument that is no tensor
        assertThatThrownBy(() -> m.call("not a tensor")).isInstanceOf(ClassCastException.class);
        assertThat(m.find("model.embed").tensor("weight").isMaterialised()).isFalse();
        assertThat(backend.live()).isEqualTo(live);
        assertThat(CompletableFuture.supplyAsync(() -> run(m)).get(30, TimeUnit.SECONDS)).containsExactly(expected);
    }

    @Test
    void aFailureInATiedModuleOnAnotherDevicePutsTheHomeTensorBack() {
        Stack m = new Stack(backend, WIDTH, 4, true, 11);
        float[] expected = run(m);
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("model", GPU0);
        map.put("head", GPU1); // tied to model.embed: it runs on a copy of the weight
        dispatcher.dispatch(m, DispatchOptions.of(DeviceMap.of(map)));
        boolean[] fail = {true};
        Hooks.add(m.find("head"), new ModelHook() {
            @Override
            public Object[] preForward(Module module, Object[] args) {
                if (fail[0]) {
                    throw new IllegalStateException("injected");
                }
                return args;
            }
        }, true);
        assertThatThrownBy(() -> run(m)).hasMessage("injected");
        assertThat(m.find("model.embed").tensor("weight").device()).isEqualTo(GPU0);
        fail[0] = false;
        assertThat(run(m)).containsExactly(expected);
    }
}
