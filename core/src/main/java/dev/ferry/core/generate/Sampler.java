package dev.ferry.core.generate;

import java.util.Arrays;
import java.util.Random;

/** Picks the next token from one row of logits, as transformers' greedy search or its sampling warpers. */
public final class Sampler {

    private final GenerationConfig config;
    private final Random random;

    public Sampler(GenerationConfig config) {
        this.config = config;
        this.random = new Random(config.seed());
    }

    public int next(float[] logits) {
        if (!config.doSample()) {
            return argmax(logits);
        }
        int n = logits.length;
        double[] scores = new double[n];
        for (int i = 0; i < n; i++) {
            scores[i] = logits[i] / config.temperature();
        }
        if (config.topK() > 0 && config.topK() < n) {
            double[] sorted = scores.clone();
            Arrays.sort(sorted);
            double kth = sorted[n - config.topK()];
            for (int i = 0; i < n; i++) {
                if (scores[i] < kth) {
                    scores[i] = Double.NEGATIVE_INFINITY;
                }
            }
        }
        double[] probs = softmax(scores);
        if (config.topP() < 1.0) {
            Integer[] order = new Integer[n];
            for (int i = 0; i < n; i++) {
                order[i] = i;
            }
            Arrays.sort(order, (a, b) -> Double.compare(probs[b], probs[a]));
            double cumulative = 0;
            boolean cut = false;
            for (Integer idx : order) {
                if (cut) {
                    scores[idx] = Double.NEGATIVE_INFINITY;
                    continue;
                }
                cumulative += probs[idx];
                cut = cumulative >= config.topP(); // keeps the smallest set reaching top_p, at least one token
            }
            System.arraycopy(softmax(scores), 0, probs, 0, n);
        }
        double u = random.nextDouble();
        double acc = 0;
        int last = -1;
        for (int i = 0; i < n; i++) {
            if (probs[i] > 0) {
                acc += probs[i];
                last = i;
                if (u < acc) {
                    return i;
                }
            }
        }
        return last;
    }

    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    private static double[] softmax(double[] s) {
        double max = Double.NEGATIVE_INFINITY;
        for (double x : s) {
            max = Math.max(max, x);
        }
        double[] out = new double[s.length];
        double sum = 0;
        for (int i = 0; i < s.length; i++) {
            out[i] = s[i] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(s[i] - max);
            sum += out[i];
        }
        for (int i = 0; i < s.length; i++) {
            out[i] /= sum;
        }
        return out;
    }
}
