package dev.ferry.examples.bench;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Generation throughput of batches on the CPU: the same {@code prompts} prompts (lengths spread over
 * {@code minLen..maxLen}, so rows are padded), {@code new} greedy tokens each with the KV cache, run in batches of
 * each size in {@code batches}; tokens/s = new tokens / wall time. Sizes are interleaved in rounds (1 4 16, 1 4 16,
 * …) and the median of {@code rounds} is reported with its ratio to the first size, all in this process. Every
 * batch's tokens are checked against the first size's (a batch must give what its rows give alone).
 *
 * <pre>
 * BatchBenchmark [model=DIR] [hidden=512 intermediate=1376 layers=8 heads=8 kvHeads=4 vocab=8000]
 *                [batches=1,4,16] [prompts=16] [minLen=16] [maxLen=48] [new=32] [rounds=3] [threads=N]
 * </pre>
 * Without {@code model} a Llama of the given shape is generated ({@link SyntheticCheckpoint}) under
 * {@code $TMPDIR/ferry-bench-batch} and deleted after.
 */
public final class BatchBenchmark {

    private BatchBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> o = new LinkedHashMap<>();
        for (String a : args) {
            String[] kv = a.split("=", 2);
            o.put(kv[0], kv[1]);
        }
        int[] sizes = Arrays.stream(o.getOrDefault("batches", "1,4,16").split(",")).mapToInt(Integer::parseInt)
                .toArray();
        int count = Integer.parseInt(o.getOrDefault("prompts", "16"));
        int minLen = Integer.parseInt(o.getOrDefault("minLen", "16"));
        int maxLen = Integer.parseInt(o.getOrDefault("maxLen", "48"));
        int newTokens = Integer.parseInt(o.getOrDefault("new", "32"));
        int rounds = Integer.parseInt(o.getOrDefault("rounds", "3"));
        Path dir;
        Path generated = null;
        SyntheticCheckpoint.Shape shape = null;
        if (o.containsKey("model")) {
            dir = Path.of(o.get("model"));
        } else {
            shape = new SyntheticCheckpoint.Shape(num(o, "hidden", 512), num(o, "intermediate", 1376),
                    num(o, "layers", 8), num(o, "heads", 8), num(o, "kvHeads", 4), num(o, "vocab", 8000));
            generated = Path.of(System.getProperty("java.io.tmpdir"), "ferry-bench-batch");
            dir = SyntheticCheckpoint.write(generated, shape, DType.FLOAT32, 7);
        }
        System.out.printf(Locale.ROOT, "# batch generation, %d cpus, java %s, model %s, %d prompts of %d..%d tokens, "
                        + "%d new tokens each (greedy, KV cache), %d rounds%n", Runtime.getRuntime().availableProcessors(),
                System.getProperty("java.version"), shape != null ? shape : dir, count, minLen, maxLen, newTokens,
                rounds);
        try (DjlBackend backend = new DjlBackend(); SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            CausalLM model = ModelFamilies.build(dir, backend);
            ModelFamilies.load(model, ckpt, backend, Device.cpu());
            Generator gen = new Generator(model, backend, Device.cpu());
            Random random = new Random(1);
            long[][] prompts = new long[count][];
            for (int i = 0; i < count; i++) {
                prompts[i] = random.longs(minLen + random.nextInt(maxLen - minLen + 1), 3, model.vocabSize())
                        .toArray();
            }
            GenerationConfig greedy = GenerationConfig.greedy(newTokens).withEos(List.of());
            Map<Integer, List<Double>> tps = new LinkedHashMap<>();
            long[][] reference = null;
            for (int round = 0; round <= rounds; round++) { // round 0 warms up
                for (int size : sizes) {
                    long start = System.nanoTime();
                    long[][] out = new long[count][];
                    for (int from = 0; from < count; from += size) {
                        long[][] batch = Arrays.copyOfRange(prompts, from, Math.min(count, from + size));
                        long[][] got = gen.generate(batch, greedy);
                        System.arraycopy(got, 0, out, from, got.length);
                    }
                    double seconds = (System.nanoTime() - start) / 1e9;
                    long tokens = Arrays.stream(out).mapToLong(r -> r.length).sum();
                    if (reference == null) {
                        reference = out;
                    } else if (!Arrays.deepEquals(reference, out)) {
                        throw new IllegalStateException("batch " + size + " gave other tokens than batch " + sizes[0]);
                    }
                    if (round > 0) {
                        tps.computeIfAbsent(size, k -> new ArrayList<>()).add(tokens / seconds);
                    }
                }
            }
            double base = median(tps.get(sizes[0]));
            for (int size : sizes) {
                List<Double> v = tps.get(size);
                System.out.printf(Locale.ROOT, "batch %3d: %8.1f tokens/s  %.2fx batch %d  [%s]%n", size, median(v),
                        median(v) / base, sizes[0], v.stream().map(x -> String.format(Locale.ROOT, "%.1f", x))
                                .reduce((a, b) -> a + " " + b).orElse(""));
            }
        } finally {
            if (generated != null && !o.getOrDefault("keep", "false").equals("true")) {
                try (var files = Files.list(generated)) {
                    for (Path p : files.toList()) {
                        Files.delete(p);
                    }
                }
                Files.delete(generated);
            }
        }
    }

    private static int num(Map<String, String> o, String key, int fallback) {
        return Integer.parseInt(o.getOrDefault(key, String.valueOf(fallback)));
    }

    private static double median(List<Double> v) {
        List<Double> s = new ArrayList<>(v);
        s.sort(Double::compare);
        return s.get(s.size() / 2);
    }
}
