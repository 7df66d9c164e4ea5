package dev.ferry.examples.bench;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.hook.StreamCounter;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.PageLocking;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.quant.QuantizedLinears;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlDTypes;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Greedy decoding of a dispatched checkpoint on an accelerator, as Accelerate's side ({@code gpu/accelerate_decode.py})
 * measures it on the same checkpoint, map and GPU: prefill of a prompt, then decode tokens per second with the KV
 * cache, median of {@code reps} runs after one warm-up. Prints one JSON line per variant.
 *
 * <pre>
 * DecodeBenchmark MODEL_DIR MAP [preload=CLASS] [prompt=128] [new=32] [reps=3] [prefetch=1] [batch=1]
 *                 [quantize=int8] [name=TEXT]
 *   MAP: a device-map JSON file, "auto:BUDGETS" (Ferry plans the map of the model as built, int8 sizes included,
 *   under budgets such as 0=4GiB,cpu=100GiB), or "plain" (all on gpu0, loaded without dispatch: no hooks at all)
 *   quantize=int8: the decoder layers' Linear weights quantized as they are loaded (held, streamed as int8; load_s
 *   includes the quantization); a checkpoint written by ferry quantize is int8 without it
 * </pre>
 * {@code streamed_bytes_per_token} is measured: the bytes the hooks brought to the GPU during the decode steps, per
 * step; {@code routed_expert_bytes_per_token} is what one token's routed experts weigh (experts per token × an
 * expert's bytes, summed over the layers whose experts are offloaded), the least a decode step must stream.
 * With {@code batch=B > 1}, B prompts of the same length (different ids) decode together and
 * {@code decode_tokens_per_s} counts every row's tokens: B × (new − 1) over the time of a B-row generate of
 * {@code new} tokens less that of one of 1 token (its prefill), both measured in each rep.
 */
public final class DecodeBenchmark {

    private DecodeBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        String mapArg = args[1];
        Map<String, String> o = new LinkedHashMap<>();
        for (int i = 2; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            o.put(kv[0], kv[1]);
        }
        int promptLen = Integer.parseInt(o.getOrDefault("prompt", "128"));
        int newTokens = Integer.parseInt(o.getOrDefault("new", "32"));
        int reps = Integer.parseInt(o.getOrDefault("reps", "3"));
        int prefetch = Integer.parseInt(o.getOrDefault("prefetch", "1"));
        Set<String> preload = o.containsKey("preload") ? Set.of(o.get("preload").split(",")) : Set.of();
        QuantizationScheme quantize = o.containsKey("quantize") ? QuantizationScheme.parse(o.get("quantize")) : null;
        Device gpu = Device.accelerator(0);
        try (DjlBackend backend = new DjlBackend(); SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            ModelConfig config = ModelConfig.read(dir);
            CausalLM model = ModelFamilies.build(config, backend, DjlDTypes.residentDType(config.dtype()), quantize);
            int quantized = QuantizedLinears.quantizedWeights(model).size();
            long t0 = System.nanoTime();
            long streamed = 0;
            long routedPerToken = 0;
            long lookupBytes = 0;
            long residentOnGpu = 0;
            double pinned = 0;
            StreamCounter counter = new StreamCounter();
            CheckpointDispatcher.Result result = null;
            if (mapArg.equals("plain")) {
                ModelFamilies.load(model, ckpt, backend, gpu);
            } else {
                // "auto:0=4GiB,cpu=100GiB": Ferry's own plan of this model (int8 sizes when quantized) under the budgets
                DeviceMap map = mapArg.startsWith("auto:")
                        ? Ferry.model(dir).deviceMap("auto").maxMemory(mapArg.substring("auto:".length())).request()
                                .deviceMapFor(model, backend, true)
                        : DeviceMap.readJson(Path.of(mapArg));
                result = new CheckpointDispatcher(backend, new Dispatcher(backend)).loadAndDispatch(model, ckpt,
                        CheckpointDispatcher.Options.of(map).withDispatch(DispatchOptions.of(map)
                                .withPreloadClasses(preload).withPrefetchBlocks(prefetch).withStreamCounter(counter)));
                DispatchReport.Memory mem = result.report().memory();
                streamed = mem.offloaded().values().stream().mapToLong(Long::longValue).sum();
                lookupBytes = mem.lookupTableBytes();
                residentOnGpu = mem.resident().getOrDefault(gpu, 0L);
                // what one token's routed experts weigh: per layer, experts-per-token of its (equal-sized) experts
                routedPerToken = mem.routed() == null ? 0 : mem.routed().bytesPerTokenAtMost();
                PageLocking locking = backend.pageLocking(gpu);
                long host = result.hostOffloadBytes();
                long lockedHost = Math.min(host, locking.lockedBytes());
                long disk = result.diskOffloadBytes();
                // disk-offloaded bytes reach the GPU through locked staging when locking works
                pinned = streamed == 0 ? 0 : (lockedHost + (locking == PageLocking.NONE ? 0 : disk)) / (double) streamed;
            }
            double loadSeconds = (System.nanoTime() - t0) / 1e9;
            long[] prompt = new long[promptLen];
            long vocab = config.integer("vocab_size");
            for (int i = 0; i < promptLen; i++) {
                prompt[i] = (i * 7919L + 13) % vocab;
            }
            Generator gen = new Generator(model, backend, gpu);
            GenerationConfig greedy = GenerationConfig.greedy(newTokens).withEos(List.of());
            int batch = Integer.parseInt(o.getOrDefault("batch", "1"));
            if (batch > 1) {
                batched(gen, o.getOrDefault("name", mapArg), mapArg, preload, loadSeconds, promptLen, newTokens,
                        reps, batch, vocab, counter);
                if (result != null) {
                    Dispatcher.remove(model);
                    result.close();
                }
                return;
            }
            java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
            List<Double> cpuShare = new ArrayList<>();
            List<Double> prefillMs = new ArrayList<>();
            List<Double> decodeTps = new ArrayList<>();
            List<Double> streamedPerToken = new ArrayList<>();
            List<Double> fetchesPerToken = new ArrayList<>();
            long[] tokens = null;
            for (int r = 0; r <= reps; r++) {
                long[] times = new long[newTokens];
                long[] cpu = new long[newTokens];
                int[] n = {0};
                long start = System.nanoTime();
                tokens = gen.generate(prompt, greedy, t -> {
                    cpu[n[0]] = mx.getCurrentThreadCpuTime();
                    times[n[0]++] = System.nanoTime();
                    if (n[0] == 1) {
                        counter.reset(); // the prefill is done: count what the decode steps stream
                    }
                });
                if (r == 0) {
                    continue; // warm-up: kernels, allocator, page cache
                }
                StreamCounter.Snapshot decoded = counter.snapshot();
                streamedPerToken.add(decoded.streamedBytes() / (double) (n[0] - 1));
                fetchesPerToken.add(decoded.expertFetches() / (double) (n[0] - 1));
                prefillMs.add((times[0] - start) / 1e6);
                decodeTps.add((n[0] - 1) / ((times[n[0] - 1] - times[0]) / 1e9));
                // the forward thread's CPU time over the decode's wall time: near 1, decoding waits on the host
                // (JNI calls, kernel launches, hooks), not on the GPU
                cpuShare.add((cpu[n[0] - 1] - cpu[0]) / (double) (times[n[0] - 1] - times[0]));
            }
            System.out.printf(Locale.ROOT, "{\"name\": \"%s\", \"map\": \"%s\", \"preload\": \"%s\", \"load_s\": %.2f, "
                            + "\"prefill_ms\": %.2f, \"decode_tokens_per_s\": %.3f, \"decode_runs\": %s, "
                            + "\"streamed_bytes_per_token\": %.0f, \"offloaded_bytes\": %d, "
                            + "\"offloaded_lookup_table_bytes\": %d, \"resident_gpu_bytes\": %d, "
                            + "\"routed_expert_bytes_per_token\": %s, \"expert_fetches_per_token\": %.2f, "
                            + "\"pinned_fraction\": %.3f, \"locked_bytes\": %d, "
                            + "\"forward_thread_cpu_share\": %.3f, \"quantized_weights\": %d, \"weight_bytes\": %d, "
                            + "\"cuda_graph_captures_replays_failures\": %s, \"tokens_head\": %s}%n",
                    o.getOrDefault("name", mapArg), mapArg, String.join(",", preload), loadSeconds, median(prefillMs),
                    median(decodeTps), decodeTps, median(streamedPerToken), streamed, lookupBytes, residentOnGpu,
                    routedPerToken == 0 ? "null" : Long.toString(routedPerToken), median(fetchesPerToken), pinned,
                    backend.pageLocking(gpu).lockedBytes(),
                    median(cpuShare), quantized, model.byteSize(),
                    Arrays.toString(dev.ferry.pytorch.TorchNative.stepGraphCounts()),
                    Arrays.toString(Arrays.copyOf(tokens, Math.min(8, tokens.length))));
            if (result != null) {
                Dispatcher.remove(model);
                result.close();
            }
        }
    }

    /** B rows decoding together: every row's tokens per second; the prefill timed apart as a one-token generate. */
    private static void batched(Generator gen, String name, String map, Set<String> preload, double loadSeconds,
                                int promptLen, int newTokens, int reps, int batch, long vocab, StreamCounter counter) {
        long[][] prompts = new long[batch][promptLen];
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < promptLen; i++) {
                prompts[b][i] = ((i + 31L * b) * 7919L + 13) % vocab;
            }
        }
        GenerationConfig one = GenerationConfig.greedy(1).withEos(List.of());
        GenerationConfig all = GenerationConfig.greedy(newTokens).withEos(List.of());
        List<Double> prefillMs = new ArrayList<>();
        List<Double> decodeTps = new ArrayList<>();
        List<Double> streamedPerStep = new ArrayList<>();
        long[][] tokens = null;
        for (int r = 0; r <= reps; r++) {
            long t0 = System.nanoTime();
            gen.generate(prompts, one);
            long t1 = System.nanoTime();
            counter.reset();
            tokens = gen.generate(prompts, all);
            long t2 = System.nanoTime();
            if (r == 0) {
                continue; // warm-up
            }
            prefillMs.add((t1 - t0) / 1e6);
            decodeTps.add(batch * (newTokens - 1) / (((t2 - t1) - (t1 - t0)) / 1e9));
            streamedPerStep.add(counter.snapshot().streamedBytes() / (double) newTokens);
        }
        System.out.printf(Locale.ROOT, "{\"name\": \"%s\", \"map\": \"%s\", \"preload\": \"%s\", \"batch\": %d, "
                        + "\"load_s\": %.2f, \"prefill_ms\": %.2f, \"decode_tokens_per_s\": %.3f, \"decode_runs\": %s, "
                        + "\"streamed_bytes_per_step\": %.0f, \"tokens_head\": %s}%n",
                name, map, String.join(",", preload), batch, loadSeconds, median(prefillMs), median(decodeTps),
                decodeTps, median(streamedPerStep), Arrays.toString(Arrays.copyOf(tokens[0], Math.min(8, newTokens))));
    }

    private static double median(List<Double> v) {
        List<Double> s = new ArrayList<>(v);
        s.sort(Double::compare);
        return s.isEmpty() ? 0 : s.get(s.size() / 2);
    }
}
