package dev.ferry.pytorch;

import dev.ferry.core.generate.Sampler;
import dev.ferry.pytorch.generate.Generator;
import java.util.function.Supplier;

/** What the GPU tests compare: greedy decode-step logits, one path against another, under a system property. */
public final class DecodeSteps {

    private DecodeSteps() {
    }

    /** Logits of {@code steps} greedy decode steps with a fresh KV cache after {@code prompt}, as the API feeds them. */
    public static float[][] greedyLogits(Generator gen, long[] prompt, int steps) {
        float[][] out = new float[steps][];
        try (var cache = gen.newCache()) {
            float[] last = gen.nextTokenLogits(prompt, 1, null, cache)[0];
            for (int i = 0; i < steps; i++) {
                last = gen.nextTokenLogits(new long[] {Sampler.argmax(last)}, 1, null, cache)[0];
                out[i] = last;
            }
        }
        return out;
    }

    /** What {@code run} gives with system property {@code key} set to {@code value}, cleared after. */
    public static <T> T withProperty(String key, String value, Supplier<T> run) {
        System.setProperty(key, value);
        try {
            return run.get();
        } finally {
            System.clearProperty(key);
        }
    }

    /** The largest absolute difference between {@code a} and {@code b}, element by element. */
    public static double maxDiff(float[][] a, float[][] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                m = Math.max(m, Math.abs(a[i][j] - b[i][j]));
            }
        }
        return m;
    }
}
