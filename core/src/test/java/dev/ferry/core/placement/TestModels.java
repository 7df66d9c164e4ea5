package dev.ferry.core.placement;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.ModuleTreeJson;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/** The small PyTorch models of Accelerate's test_modeling_utils.py, as planning trees, and the fixtures. */
final class TestModels {

    private TestModels() {
    }

    static final Device GPU0 = Device.accelerator(0);
    static final Device GPU1 = Device.accelerator(1);
    static final Device GPU2 = Device.accelerator(2);
    static final Device CPU = Device.cpu();
    static final Device DISK = Device.disk();

    /** {@code nn.Linear(in, out)}: weight [out, in] and bias [out], float32. */
    static Module linear(int in, int out) {
        Module m = new Module("Linear");
        m.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, out, in)));
        m.registerParameter("bias", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, out)));
        return m;
    }

    /** {@code nn.BatchNorm1d(n)}: weight, bias; buffers running_mean, running_var (float32), num_batches_tracked (int64 scalar). */
    static Module batchNorm(int n) {
        Module m = new Module("BatchNorm1d");
        m.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, n)));
        m.registerParameter("bias", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, n)));
        m.registerBuffer("running_mean", TensorSlot.buffer(TensorSpec.of(DType.FLOAT32, n), true));
        m.registerBuffer("running_var", TensorSlot.buffer(TensorSpec.of(DType.FLOAT32, n), true));
        m.registerBuffer("num_batches_tracked", TensorSlot.buffer(TensorSpec.of(DType.INT64), true));
        return m;
    }

    /** Accelerate's ModelForTest: linear1 (3→4, 64 B), batchnorm (4, 72 B), linear2 (4→5, 100 B); 236 B. */
    static Module modelForTest() {
        Module m = new Module("ModelForTest");
        m.addChild("linear1", linear(3, 4));
        m.addChild("batchnorm", batchNorm(4));
        m.addChild("linear2", linear(4, 5));
        return m;
    }

    /** {@code nn.Sequential(a, b, ...)} with children named 0, 1, ... */
    static Module sequential(Module... children) {
        Module s = new Module("Sequential");
        for (int i = 0; i < children.length; i++) {
            s.addChild(Integer.toString(i), children[i]);
        }
        return s;
    }

    /** {@code nn.Sequential(OrderedDict(...))}. */
    static Module sequential(Map<String, Module> children) {
        Module s = new Module("Sequential");
        children.forEach(s::addChild);
        return s;
    }

    static <V> LinkedHashMap<String, V> ordered(Object... kv) {
        LinkedHashMap<String, V> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            @SuppressWarnings("unchecked")
            V v = (V) kv[i + 1];
            m.put((String) kv[i], v);
        }
        return m;
    }

    /** PyTorch's {@code model.<to> = model.<from>} for a parameter: {@code to} now shares {@code from}'s tensor. */
    static void tie(Module root, String to, String from) {
        root.find(parentOf(to)).replaceTensor(leafOf(to), root.find(parentOf(from)).tensor(leafOf(from)));
    }

    private static String parentOf(String full) {
        int dot = full.lastIndexOf('.');
        return dot < 0 ? "" : full.substring(0, dot);
    }

    private static String leafOf(String full) {
        return full.substring(full.lastIndexOf('.') + 1);
    }

    static void buffer(Module root, String module, String name, long... shape) {
        root.find(module).registerBuffer(name, TensorSlot.buffer(TensorSpec.of(DType.FLOAT32, shape), true));
    }

    static Map<Device, Long> memory(Object... deviceAndBytes) {
        LinkedHashMap<Device, Long> m = new LinkedHashMap<>();
        for (int i = 0; i < deviceAndBytes.length; i += 2) {
            m.put((Device) deviceAndBytes[i], ((Number) deviceAndBytes[i + 1]).longValue());
        }
        return m;
    }

    static Map<String, Device> map(Object... keyAndDevice) {
        return ordered(keyAndDevice);
    }

    static Path fixture(String name) {
        return dev.ferry.core.testing.Fixtures.model(name).resolve("module_tree.json");
    }

    static Module tinyLlama() {
        return ModuleTreeJson.read(fixture("tiny-llama"));
    }

    static Module tinyGpt2() {
        return ModuleTreeJson.read(fixture("tiny-gpt2"), Set.of(Set.of("transformer.wte.weight", "lm_head.weight")));
    }
}
