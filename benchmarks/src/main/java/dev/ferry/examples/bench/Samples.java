package dev.ferry.examples.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Times of named variants measured interleaved in rounds (A B C, A B C, ...) so that load from other
 * processes on a shared machine hits every variant alike; ratios are taken against a baseline variant of
 * the same run, per round, and summarised by their median and range.
 */
final class Samples {

    private final Map<String, List<double[]>> rounds = new LinkedHashMap<>();

    /** Records the seconds of one round of {@code variant}. */
    void add(String variant, double[] seconds) {
        rounds.computeIfAbsent(variant, k -> new ArrayList<>()).add(seconds.clone());
    }

    double median(String variant) {
        return median(rounds.get(variant).stream().flatMapToDouble(Arrays::stream).toArray());
    }

    double min(String variant) {
        return rounds.get(variant).stream().flatMapToDouble(Arrays::stream).min().orElse(Double.NaN);
    }

    /** Per round: median of the variant / median of the baseline; sorted. */
    double[] roundRatios(String variant, String baseline) {
        List<double[]> v = rounds.get(variant);
        List<double[]> b = rounds.get(baseline);
        int n = Math.min(v.size(), b.size());
        double[] r = new double[n];
        for (int i = 0; i < n; i++) {
            r[i] = median(v.get(i)) / median(b.get(i));
        }
        Arrays.sort(r);
        return r;
    }

    double ratio(String variant, String baseline) {
        return median(roundRatios(variant, baseline));
    }

    /** One line per variant: median and min time, and the ratio to {@code baseline} (median [min..max] of rounds). */
    String table(String baseline) {
        StringBuilder sb = new StringBuilder();
        for (String v : rounds.keySet()) {
            int n = rounds.get(v).stream().mapToInt(a -> a.length).sum();
            sb.append(String.format(Locale.ROOT, "  %-44s median %9.3f ms  min %9.3f ms  (n=%d)", v,
                    median(v) * 1e3, min(v) * 1e3, n));
            if (!v.equals(baseline)) {
                double[] r = roundRatios(v, baseline);
                sb.append(String.format(Locale.ROOT, "  ratio %.3fx [%.3f..%.3f]", median(r), r[0], r[r.length - 1]));
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    static double median(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);
        int n = s.length;
        return n == 0 ? Double.NaN : n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    /** Times {@code body} {@code reps} times, in seconds. */
    static double[] time(int reps, Runnable body) {
        double[] out = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            body.run();
            out[i] = (System.nanoTime() - t0) / 1e9;
        }
        return out;
    }
}
