package dev.ferry.core.generate;

import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Picks the next token from one row of (finite) logits, as transformers' greedy search or its sampling warpers. A
 * temperature so small that logits / temperature overflows a double (say {@code 1e-320}) leaves no distribution to
 * sample from: that token is chosen greedily (the limit of sampling as the temperature goes to 0), and a warning is
 * logged once per process.
 */
public final class Sampler {

    private static final Logger LOG = LoggerFactory.getLogger(Sampler.class);
    private static final AtomicBoolean WARNED = new AtomicBoolean();

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
            if (!Double.isFinite(scores[i]) && Float.isFinite(logits[i])) {
                return degenerate(logits);
            }
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
        return last >= 0 ? last : argmax(logits);
    }

    private int degenerate(float[] logits) {
        if (WARNED.compareAndSet(false, true)) {
            LOG.warn("temperature {} makes logits / temperature overflow, so sampling has no distribution; choosing "
                    + "those tokens greedily (said once)", config.temperature());
        }
        return argmax(logits);
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
