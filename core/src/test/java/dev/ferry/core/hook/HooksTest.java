package dev.ferry.core.hook;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.TestBackend;
import dev.ferry.core.testing.TestLayers.ModelForTest;
import dev.ferry.core.testing.TestTensor;
import dev.ferry.core.weights.HostMemoryStore;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Hook machinery, after Accelerate's tests/test_hooks.py, on the pure-Java test backend. */
class HooksTest {

    private static final Device GPU0 = Device.accelerator(0);
    private static final Device GPU1 = Device.accelerator(1);

    private final TestBackend backend = new TestBackend(2);

    private TestTensor input() {
        return backend.tensor(Device.cpu(), new long[] {2, 3}, 1f, -2f, 0.5f, 3f, 0f, -1f);
    }

    private float[] run(Module m) {
        TestTensor in = input();
        TestTensor out = (TestTensor) m.call(in);
        float[] v = out.data().clone();
        out.close();
        in.close();
        return v;
    }

    /** Adds {@code delta} to the first input element before forward; records calls. */
    static final class ShiftInput implements ModelHook {
        final List<String> log;
        final String tag;

        ShiftInput(List<String> log, String tag) {
            this.log = log;
            this.tag = tag;
        }

        @Override
        public void init(Module module) {
            log.add(tag + ".init");
        }

        @Override
        public Object[] preForward(Module module, Object[] args) {
            log.add(tag + ".pre");
            return args;
        }

        @Override
        public Object postForward(Module module, Object output) {
            log.add(tag + ".post");
            return output;
        }

        @Override
        public void abortForward(Module module) {
            log.add(tag + ".abort");
        }

        @Override
        public void detach(Module module) {
            log.add(tag + ".detach");
        }
    }

    @Test
    void addedHookRunsAroundForwardAndRemovalDetachesIt() {
        ModelForTest model = new ModelForTest(backend, 1);
        List<String> log = new ArrayList<>();
        Hooks.add(model, new ShiftInput(log, "a"));
        run(model);
        Hooks.remove(model, false);
        run(model);
        assertThat(log).containsExactly("a.init", "a.pre", "a.post", "a.detach");
        assertThat(model.hook()).isNull();
    }

    @Test
    void appendedHooksRunInOrderAndReplacingDetachesTheOld() {
        ModelForTest model = new ModelForTest(backend, 1);
        List<String> log = new ArrayList<>();
        Hooks.add(model, new ShiftInput(log, "a"));
        Hooks.add(model, new ShiftInput(log, "b"), true);
        run(model);
        assertThat(model.hook()).isInstanceOf(SequentialHook.class);
        Hooks.add(model, new ShiftInput(log, "c"));
        assertThat(log).containsExactly("a.init", "b.init", "a.pre", "b.pre", "a.post", "b.post",
                "a.detach", "b.detach", "c.init");
    }

    @Test
    void aFailedForwardAbortsEveryAppendedHookInsteadOfPostForward() {
        ModelForTest model = new ModelForTest(backend, 1);
        List<String> log = new ArrayList<>();
        Hooks.add(model, new ShiftInput(log, "a"));
        Hooks.add(model, new ShiftInput(log, "b"), true);
        assertThatThrownBy(() -> model.call("not a tensor")).isInstanceOf(ClassCastException.class);
        assertThat(log).containsExactly("a.init", "b.init", "a.pre", "b.pre", "b.abort", "a.abort");
    }

    @Test
    void removeRecursesIntoChildren() {
        ModelForTest model = new ModelForTest(backend, 1);
        Hooks.add(model.child("linear1"), new ShiftInput(new ArrayList<>(), "x"));
        Hooks.add(model, new ShiftInput(new ArrayList<>(), "y"));
        Hooks.remove(model, true);
        assertThat(Hooks.countHooked(model)).isZero();
    }

    @Test
    void alignDevicesAsModelParallelismGivesTheSameOutputOnTheInputDevice() {
        ModelForTest model = new ModelForTest(backend, 1);
        float[] expected = run(model);
        Hooks.add(model.child("linear1"), new AlignDevicesHook(AlignDevicesHook.Config.executionDevice(GPU0)));
        Hooks.add(model.child("batchnorm"), new AlignDevicesHook(AlignDevicesHook.Config.executionDevice(GPU0)));
        Hooks.add(model.child("linear2"), new AlignDevicesHook(AlignDevicesHook.Config.executionDevice(GPU1)));
        assertThat(model.child("linear1").tensor("weight").device()).isEqualTo(GPU0);
        assertThat(model.child("batchnorm").tensor("running_mean").device()).isEqualTo(GPU0);
        assertThat(model.child("linear2").tensor("weight").device()).isEqualTo(GPU1);
        TestTensor out = (TestTensor) model.call(input());
        assertThat(out.device()).isEqualTo(GPU1);
        assertThat(out.data()).containsExactly(expected);
        out.close();

        Hooks.add(model, new AlignDevicesHook(new AlignDevicesHook.Config(null, false, true, false, false, Set.of(),
                null, null)));
        TestTensor back = (TestTensor) model.call(input());
        assertThat(back.device()).isEqualTo(Device.cpu());
        assertThat(back.data()).containsExactly(expected);
    }

    @Test
    void alignDevicesAsCpuOffloadKeepsWeightsOnMetaBetweenForwards() {
        ModelForTest model = new ModelForTest(backend, 1);
        float[] expected = run(model);
        HostMemoryStore store = storeOf(model);
        for (String child : List.of("linear1", "batchnorm", "linear2")) {
            Hooks.add(model.child(child), new AlignDevicesHook(
                    new AlignDevicesHook.Config(GPU0, true, false, false, false, Set.of(), prefixed(store, child),
                            backend)));
        }
        assertThat(model.child("linear1").tensor("weight").isMaterialised()).isFalse();
        // buffers are not offloaded unless asked: they wait on the execution device
        assertThat(model.child("batchnorm").tensor("running_mean").device()).isEqualTo(GPU0);
        Hooks.add(model, new AlignDevicesHook(new AlignDevicesHook.Config(GPU0, false, true, false, false, Set.of(),
                null, null)));
        assertThat(run(model)).containsExactly(expected);
        assertThat(model.child("linear2").tensor("weight").isMaterialised()).isFalse();
        Hooks.remove(model, true);
        assertThat(model.child("linear1").tensor("weight").device()).isEqualTo(Device.cpu());
        assertThat(model.child("batchnorm").tensor("running_mean").device()).isEqualTo(Device.cpu());
        assertThat(run(model)).containsExactly(expected);
    }

    @Test
    void offloadBuffersStreamsBuffersToo() {
        ModelForTest model = new ModelForTest(backend, 1);
        float[] expected = run(model);
        HostMemoryStore store = storeOf(model);
        Hooks.add(model.child("batchnorm"), new AlignDevicesHook(new AlignDevicesHook.Config(GPU0, true, true, false,
                true, Set.of(), prefixed(store, "batchnorm"), backend)));
        assertThat(model.child("batchnorm").tensor("running_mean").isMaterialised()).isFalse();
        Hooks.add(model.child("linear1"), new AlignDevicesHook(AlignDevicesHook.Config.executionDevice(GPU0)));
        Hooks.add(model.child("linear2"), new AlignDevicesHook(AlignDevicesHook.Config.executionDevice(GPU0)));
        assertThat(run(model)).containsExactly(expected);
    }

    @Test
    void offloadedWeightsAndMovedInputsAreFreedAfterEveryForward() {
        ModelForTest model = new ModelForTest(backend, 1);
        HostMemoryStore store = storeOf(model);
        for (String child : List.of("linear1", "batchnorm", "linear2")) {
            Hooks.add(model.child(child), new AlignDevicesHook(new AlignDevicesHook.Config(GPU0, true, child.equals(
                    "linear2"), false, true, Set.of(), prefixed(store, child), backend)));
        }
        run(model);
        int live = backend.live();
        for (int i = 0; i < 100; i++) {
            run(model);
        }
        assertThat(backend.live()).isEqualTo(live);
    }

    @Test
    void cpuOffloadWithHookSendsThePreviousModelBackWhenTheNextRuns() {
        ModelForTest first = new ModelForTest(backend, 1);
        ModelForTest second = new ModelForTest(backend, 2);
        float[] expected = run(second);
        CpuOffloadHook h1 = CpuOffloadHook.attach(first, GPU0, null);
        CpuOffloadHook h2 = CpuOffloadHook.attach(second, GPU0, h1);
        TestTensor mid = (TestTensor) first.call(input());
        assertThat(first.child("linear1").tensor("weight").device()).isEqualTo(GPU0);
        mid.close();
        float[] out = run(second);
        assertThat(out).containsExactly(expected);
        assertThat(first.child("linear1").tensor("weight").device()).isEqualTo(Device.cpu());
        assertThat(second.child("linear1").tensor("weight").device()).isEqualTo(GPU0);
        h2.offload();
        assertThat(second.child("linear2").tensor("bias").device()).isEqualTo(Device.cpu());
        h2.remove();
        assertThat(second.hook()).isNull();
    }

    @Test
    void skipKeysLeaveThoseArgumentsWhereTheyAre() {
        Module probe = new Module("Probe") {
            @Override
            protected Object forward(Object... args) {
                @SuppressWarnings("unchecked")
                java.util.Map<String, Object> kwargs = (java.util.Map<String, Object>) args[0];
                return List.of(((TestTensor) kwargs.get("hidden")).device(), ((TestTensor) kwargs.get("past")).device());
            }
        };
        Hooks.add(probe, new AlignDevicesHook(new AlignDevicesHook.Config(GPU0, false, false, false, false,
                Set.of("past"), null, null)));
        TestTensor hidden = backend.tensor(Device.cpu(), new long[] {1}, 1f);
        TestTensor past = backend.tensor(Device.cpu(), new long[] {1}, 2f);
        Object devices = probe.call(java.util.Map.of("hidden", hidden, "past", past));
        assertThat(devices).isEqualTo(List.of(GPU0, Device.cpu()));
    }

    static HostMemoryStore storeOf(Module model) {
        HostMemoryStore store = new HostMemoryStore();
        model.namedTensors().forEach((n, s) -> store.put(n, s.spec(), s.value().toBytes()));
        return store;
    }

    /** The hook reads full names; a child hooked alone still names tensors from the root. */
    static HostMemoryStore prefixed(HostMemoryStore store, String child) {
        return store;
    }

    static TensorSlot slot(Module m, String path) {
        int dot = path.lastIndexOf('.');
        return m.find(path.substring(0, dot)).tensor(path.substring(dot + 1));
    }
}
