package dev.ferry.core.testing;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import java.util.Random;

/**
 * Small computing modules over {@link TestTensor}s, strict like PyTorch: every input and weight of a forward
 * must be on one device, so a missing hook shows up as an error, not a wrong number.
 */
public final class TestLayers {

    private TestLayers() {
    }

    static void sameDevice(Module m, TestTensor... tensors) {
        Device d = tensors[0].device();
        for (TestTensor t : tensors) {
            if (!t.device().equals(d)) {
                throw new IllegalStateException(m + ": expected all tensors on one device, found " + d + " and "
                        + t.device());
            }
        }
    }

    static TestTensor value(Module m, String name) {
        TensorSlot s = m.tensor(name);
        if (!s.isMaterialised()) {
            throw new IllegalStateException(m + ": tensor '" + name + "' is on meta during forward");
        }
        return (TestTensor) s.value();
    }

    /** y = x·Wᵀ + b for x of shape [rows, in]. */
    public static final class Linear extends Module {
        final int in;
        final int out;

        public Linear(TestBackend backend, int in, int out, Random random) {
            super("Linear");
            this.in = in;
            this.out = out;
            float[] w = new float[in * out];
            float[] b = new float[out];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) random.nextGaussian();
            }
            for (int i = 0; i < b.length; i++) {
                b[i] = (float) random.nextGaussian();
            }
            registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, out, in)))
                    .set(backend.tensor(Device.cpu(), new long[] {out, in}, w));
            registerParameter("bias", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, out)))
                    .set(backend.tensor(Device.cpu(), new long[] {out}, b));
        }

        @Override
        protected Object forward(Object... args) {
            TestTensor x = (TestTensor) args[0];
            TestTensor w = value(this, "weight");
            TestTensor b = value(this, "bias");
            sameDevice(this, x, w, b);
            int rows = (int) (x.spec().elementCount() / in);
            float[] xs = x.data();
            float[] ws = w.data();
            float[] bs = b.data();
            float[] y = new float[rows * out];
            for (int r = 0; r < rows; r++) {
                for (int o = 0; o < out; o++) {
                    float acc = bs[o];
                    for (int i = 0; i < in; i++) {
                        acc += xs[r * in + i] * ws[o * in + i];
                    }
                    y[r * out + o] = acc;
                }
            }
            return x.withData(y, rows, out);
        }
    }

    /** Subtracts a running-mean buffer, like a frozen batch norm: a module with a persistent buffer. */
    public static final class Center extends Module {
        final int width;

        public Center(TestBackend backend, int width, Random random) {
            super("BatchNorm1d");
            this.width = width;
            float[] mean = new float[width];
            for (int i = 0; i < width; i++) {
                mean[i] = (float) random.nextGaussian();
            }
            registerBuffer("running_mean", TensorSlot.buffer(TensorSpec.of(DType.FLOAT32, width), true))
                    .set(backend.tensor(Device.cpu(), new long[] {width}, mean));
        }

        @Override
        protected Object forward(Object... args) {
            TestTensor x = (TestTensor) args[0];
            TestTensor mean = value(this, "running_mean");
            sameDevice(this, x, mean);
            float[] xs = x.data();
            float[] ms = mean.data();
            float[] y = new float[xs.length];
            for (int i = 0; i < xs.length; i++) {
                y[i] = xs[i] - ms[i % width];
            }
            return x.withData(y, x.spec().shape());
        }
    }

    /** max(0, x); owns no tensor. */
    public static final class Relu extends Module {
        public Relu() {
            super("ReLU");
        }

        @Override
        protected Object forward(Object... args) {
            TestTensor x = (TestTensor) args[0];
            float[] xs = x.data();
            float[] y = new float[xs.length];
            for (int i = 0; i < xs.length; i++) {
                y[i] = Math.max(0f, xs[i]);
            }
            return x.withData(y, x.spec().shape());
        }
    }

    /** Accelerate's {@code ModelForTest}: linear1 (3→4), batchnorm (4), linear2 (4→5). */
    public static final class ModelForTest extends Module {
        public ModelForTest(TestBackend backend, long seed) {
            super("ModelForTest");
            Random r = new Random(seed);
            addChild("linear1", new Linear(backend, 3, 4, r));
            addChild("batchnorm", new Center(backend, 4, r));
            addChild("linear2", new Linear(backend, 4, 5, r));
        }

        @Override
        protected Object forward(Object... args) {
            Object x = args[0];
            Object h = child("linear1").call(x);
            Object n = child("batchnorm").call(h);
            Object out = child("linear2").call(n);
            closeAll(h, n);
            return out;
        }
    }

    /** A decoder-shaped stack: embed, N blocks (attn + an MLP container of fc1/act/fc2, residual), head. */
    public static final class Stack extends Module {
        final int layers;

        public Stack(TestBackend backend, int width, int layers, boolean tieHead, long seed) {
            super("TestStack");
            this.layers = layers;
            Random r = new Random(seed);
            Module model = addChild("model", new Module("TestModel"));
            model.addChild("embed", new Linear(backend, width, width, r));
            Module list = model.addChild("layers", new Module("ModuleList"));
            for (int i = 0; i < layers; i++) {
                list.addChild(Integer.toString(i), new Block(backend, width, r));
            }
            model.addChild("norm", new Center(backend, width, r));
            Linear head = addChild("head", new Linear(backend, width, width, r));
            if (tieHead) {
                TensorSlot shared = model.child("embed").tensor("weight");
                head.tensor("weight").release();
                head.replaceTensor("weight", shared);
            }
        }

        @Override
        protected Object forward(Object... args) {
            Module model = child("model");
            Object h = model.child("embed").call(args[0]);
            for (int i = 0; i < layers; i++) {
                Object next = model.child("layers").child(Integer.toString(i)).call(h);
                closeAll(h);
                h = next;
            }
            Object n = model.child("norm").call(h);
            Object out = child("head").call(n);
            closeAll(h, n);
            return out;
        }
    }

    /** One block: {@code attn} (Linear), {@code mlp} (TestMLP: fc1, act, fc2), output x + mlp(attn(x)). */
    public static final class Block extends Module {
        public Block(TestBackend backend, int width, Random r) {
            super("TestBlock");
            addChild("attn", new Linear(backend, width, width, r));
            addChild("mlp", new Mlp(backend, width, r));
        }

        @Override
        protected Object forward(Object... args) {
            TestTensor x = (TestTensor) args[0];
            TestTensor a = (TestTensor) child("attn").call(x);
            TestTensor m = (TestTensor) child("mlp").call(a);
            sameDevice(this, x, m);
            float[] y = x.data().clone();
            float[] ms = m.data();
            for (int i = 0; i < y.length; i++) {
                y[i] += ms[i];
            }
            closeAll(a, m);
            return x.withData(y, x.spec().shape());
        }
    }

    public static final class Mlp extends Module {
        public Mlp(TestBackend backend, int width, Random r) {
            super("TestMLP");
            addChild("fc1", new Linear(backend, width, 2 * width, r));
            addChild("act", new Relu());
            addChild("fc2", new Linear(backend, 2 * width, width, r));
        }

        @Override
        protected Object forward(Object... args) {
            Object h = child("fc1").call(args[0]);
            Object a = child("act").call(h);
            Object out = child("fc2").call(a);
            closeAll(h, a);
            return out;
        }
    }

    static void closeAll(Object... tensors) {
        for (Object t : tensors) {
            ((TestTensor) t).close();
        }
    }
}
