package dev.ferry.core.dispatch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.CopyStream;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.core.testing.TestBackend;
import dev.ferry.core.testing.TestLayers.Stack;
import dev.ferry.core.testing.TestTensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Blocks prepared ahead of the forward go through the backend's copy stream: entered and completed on the prefetch
 * thread (so their copies run beside the compute and are whole when taken), handed over on the forward's thread
 * (so their memory is not reused while the compute reads it). Blocks made on the forward's thread never touch it.
 */
class CopyStreamTest {

    private static final Device GPU0 = Device.accelerator(0);
    private static final Device CPU = Device.cpu();
    private static final int WIDTH = 6;
    private static final int TENSORS_PER_BLOCK = 6;

    /** What the copy stream was asked, by whom. */
    record Call(String what, String thread, Device device) {
    }

    static final class RecordingCopyStream implements CopyStream {
        final List<Call> calls = Collections.synchronizedList(new ArrayList<>());
        volatile boolean failComplete;

        @Override
        public void enter(Device device) {
            calls.add(new Call("enter", Thread.currentThread().getName(), device));
        }

        @Override
        public void complete(Device device) {
            calls.add(new Call("complete", Thread.currentThread().getName(), device));
            if (failComplete) {
                throw new IllegalStateException("copy stream failed");
            }
        }

        @Override
        public void handOver(Tensor tensor) {
            calls.add(new Call("handOver", Thread.currentThread().getName(), tensor.device()));
        }

        List<Call> of(String what) {
            synchronized (calls) {
                return calls.stream().filter(c -> c.what().equals(what)).toList();
            }
        }
    }

    private final RecordingCopyStream stream = new RecordingCopyStream();
    private final TestBackend backend = new TestBackend(1) {
        @Override
        public CopyStream copyStream(Device executionDevice) {
            return executionDevice.isAccelerator() ? stream : CopyStream.NONE;
        }
    };
    private final Dispatcher dispatcher = new Dispatcher(backend);

    private static DeviceMap twoLayersInCpuMemory() {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed", GPU0);
        m.put("model.layers.0", GPU0);
        m.put("model.layers.1", CPU);
        m.put("model.layers.2", CPU);
        m.put("model.layers.3", GPU0);
        m.put("model.norm", GPU0);
        m.put("head", GPU0);
        return DeviceMap.of(m);
    }

    private float[] run(Module m) {
        float[] x = new float[2 * WIDTH];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.cos(i);
        }
        try (TestTensor in = backend.tensor(CPU, new long[] {2, WIDTH}, x);
             TestTensor out = (TestTensor) m.call(in)) {
            return out.data().clone();
        }
    }

    private Stack dispatched(int prefetch) {
        Stack m = new Stack(backend, WIDTH, 4, false, 11);
        dispatcher.dispatch(m, DispatchOptions.of(twoLayersInCpuMemory())
                .withPreloadClasses(Set.of("TestBlock")).withPrefetchBlocks(prefetch));
        return m;
    }

    @Test
    void blocksPreparedAheadEnterAndCompleteTheCopyStreamOnThePrefetchThread() {
        Stack m = dispatched(1);
        for (int i = 0; i < 5; i++) {
            run(m);
        }
        List<Call> ahead;
        synchronized (stream.calls) {
            ahead = stream.calls.stream().filter(c -> !c.what().equals("handOver")).toList();
        }
        assertThat(ahead).isNotEmpty().allSatisfy(c -> {
            assertThat(c.thread()).isEqualTo("ferry-prefetch");
            assertThat(c.device()).isEqualTo(GPU0);
        });
        // enter, complete per block; the last block may still be in flight
        for (int i = 0; i < ahead.size(); i++) {
            assertThat(ahead.get(i).what()).as("call %d", i).isEqualTo(i % 2 == 0 ? "enter" : "complete");
        }
        assertThat(ahead.size()).isGreaterThanOrEqualTo(2 * 5);
    }

    @Test
    void everyTensorTakenFromThePrefetcherIsHandedOverOnTheForwardsThread() {
        Stack m = dispatched(2);
        String forward = Thread.currentThread().getName();
        run(m); // the first forward may find nothing prepared ahead
        stream.calls.clear();
        int forwards = 6;
        for (int i = 0; i < forwards; i++) {
            run(m);
        }
        // two offloaded blocks per forward, each prepared ahead once the prefetcher is running
        assertThat(stream.of("handOver")).hasSize(forwards * 2 * TENSORS_PER_BLOCK)
                .allSatisfy(c -> {
                    assertThat(c.thread()).isEqualTo(forward);
                    assertThat(c.device()).isEqualTo(GPU0);
                });
    }

    @Test
    void copyStreamsLeaveTheNumbersAsTheyWere() {
        float[] expected = run(new Stack(backend, WIDTH, 4, false, 11));
        Stack m = dispatched(2);
        for (int i = 0; i < 4; i++) {
            assertThat(run(m)).containsExactly(expected);
        }
    }

    @Test
    void withoutPrefetchTheCopyStreamIsNeverUsed() {
        Stack m = dispatched(0);
        run(m);
        run(m);
        assertThat(stream.calls).isEmpty();
    }

    @Test
    void aCopyStreamThatFailsFreesTheBlockAndSurfacesOnTheForward() {
        int before = backend.live();
        Stack failing = dispatched(1);
        stream.failComplete = true;
        assertThatThrownBy(() -> {
            for (int i = 0; i < 3; i++) {
                run(failing);
            }
        }).hasMessageContaining("copy stream failed");
        stream.failComplete = false;
        Dispatcher.remove(failing);
        // every weight back where it was and none of the failed block's tensors alive: at most the one activation the
        // test model's own forward held when the hook threw (the model, not the hook, owns it)
        assertThat(backend.live() - before - failing.namedTensors().size()).isBetween(0, 1);
    }
}
