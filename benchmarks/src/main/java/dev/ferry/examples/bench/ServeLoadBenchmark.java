package dev.ferry.examples.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.config.TokenLimits;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.serve.FerryServer;
import dev.ferry.serve.ServeOptions;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code ferry serve} under load: {@code clients} concurrent streaming clients, each sending
 * {@code POST /v1/completions} with {@code "stream": true} (random prompts of {@code minLen..maxLen} token ids,
 * {@code new} greedy tokens, usage included) one after another for {@code seconds}; then the same load with the server
 * decoding one request at a time ({@code maxBatch} 1), in the same process. Prints, per run, requests/s, new tokens/s,
 * time to first token (the first server-sent event, which leaves with the first token) p50 and p99, errors (non-200,
 * a stream without {@code [DONE]}, or an error event), and the process's resident memory and heap before and after;
 * then batched tokens/s over one-at-a-time tokens/s. The clients run in the server's JVM, on the same cores.
 *
 * <pre>
 * ServeLoadBenchmark [model=DIR] [map=auto|FILE.json] [maxMemory=0=20GiB,cpu=60GiB] [clients=64] [seconds=60]
 *                    [new=32] [minLen=8] [maxLen=32] [modes=batched,sequential] [name=LABEL]
 * </pre>
 * Without {@code model}, {@code testdata/tiny-llama} of the checkout it runs in (the CPU fixture).
 */
public final class ServeLoadBenchmark {

    private static final ObjectMapper JSON = new ObjectMapper();

    private ServeLoadBenchmark() {
    }

    /** What one run measured. */
    record Run(String mode, int clients, double seconds, int requests, long tokens, int errors, double ttftP50Ms,
               double ttftP99Ms, long rssBeforeMiB, long rssAfterMiB, long heapBeforeMiB, long heapAfterMiB,
               int batches) {

        double requestsPerSecond() {
            return requests / seconds;
        }

        double tokensPerSecond() {
            return tokens / seconds;
        }
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> o = new LinkedHashMap<>();
        for (String a : args) {
            String[] kv = a.split("=", 2);
            o.put(kv[0], kv.length > 1 ? kv[1] : "");
        }
        Path dir = Path.of(o.getOrDefault("model", "testdata/tiny-llama"));
        if (!Files.isRegularFile(dir.resolve("config.json"))) {
            throw new IllegalArgumentException("model=" + dir + " has no config.json (run from a checkout, where "
                    + "testdata/tiny-llama is the default, or name a model folder)");
        }
        int clients = Integer.parseInt(o.getOrDefault("clients", "64"));
        double seconds = Double.parseDouble(o.getOrDefault("seconds", "60"));
        int newTokens = Integer.parseInt(o.getOrDefault("new", "32"));
        int minLen = Integer.parseInt(o.getOrDefault("minLen", "8"));
        int maxLen = Integer.parseInt(o.getOrDefault("maxLen", "32"));
        String[] modes = o.getOrDefault("modes", "batched,sequential").split(",");
        String name = o.getOrDefault("name", "serve load");
        Ferry.Builder builder = Ferry.model(dir);
        String map = o.getOrDefault("map", "auto");
        builder.deviceMap(map.endsWith(".json") ? Files.readString(Path.of(map)) : map);
        if (o.containsKey("maxMemory")) {
            builder.maxMemory(o.get("maxMemory"));
        }
        List<Run> runs = new ArrayList<>();
        try (DispatchedModel model = builder.load()) {
            TokenLimits limits = model.languageModel().tokenLimits();
            int vocab = Math.min(limits.vocabSize(), 32000);
            for (String mode : modes) {
                int maxBatch = mode.equals("sequential") ? 1 : clients;
                ServeOptions options = ServeOptions.defaults("bench", 0).withMaxBatch(maxBatch)
                        .withMaxQueued(clients).withRequestTimeout(Duration.ofMinutes(10));
                try (FerryServer server = FerryServer.start(model, options)) {
                    load(server, 2, 2, vocab, minLen, maxLen, newTokens); // warm up: JIT, allocator, connections
                    Run r = measure(mode, server, clients, seconds, vocab, minLen, maxLen, newTokens);
                    runs.add(r);
                    System.out.printf(Locale.ROOT, "%s, %s: %d clients, %.1f s, %d requests (%.2f/s), %d new tokens "
                                    + "(%.1f/s), time to first token p50 %.1f ms p99 %.1f ms, %d errors, %d batches, "
                                    + "RSS %d -> %d MiB, heap %d -> %d MiB%n", name, mode, r.clients(), r.seconds(),
                            r.requests(), r.requestsPerSecond(), r.tokens(), r.tokensPerSecond(), r.ttftP50Ms(),
                            r.ttftP99Ms(), r.errors(), r.batches(), r.rssBeforeMiB(), r.rssAfterMiB(),
                            r.heapBeforeMiB(), r.heapAfterMiB());
                    System.out.println(JSON.writeValueAsString(Map.ofEntries(Map.entry("name", name + ": " + mode),
                            Map.entry("clients", r.clients()), Map.entry("seconds", r.seconds()),
                            Map.entry("requests", r.requests()), Map.entry("requests_per_s", r.requestsPerSecond()),
                            Map.entry("tokens", r.tokens()), Map.entry("tokens_per_s", r.tokensPerSecond()),
                            Map.entry("ttft_p50_ms", r.ttftP50Ms()), Map.entry("ttft_p99_ms", r.ttftP99Ms()),
                            Map.entry("errors", r.errors()), Map.entry("batches", r.batches()),
                            Map.entry("rss_before_mib", r.rssBeforeMiB()), Map.entry("rss_after_mib", r.rssAfterMiB()),
                            Map.entry("heap_before_mib", r.heapBeforeMiB()),
                            Map.entry("heap_after_mib", r.heapAfterMiB()))));
                }
            }
        }
        if (runs.size() == 2) {
            System.out.printf(Locale.ROOT, "%s: batched serving %.2fx the tokens/s of one request at a time%n", name,
                    runs.get(0).tokensPerSecond() / runs.get(1).tokensPerSecond());
        }
    }

    private static Run measure(String mode, FerryServer server, int clients, double seconds, int vocab, int minLen,
                               int maxLen, int newTokens) throws Exception {
        long rssBefore = rssMiB();
        long heapBefore = heapMiB();
        int batchesBefore = server.batches();
        long start = System.nanoTime();
        Result r = load(server, clients, (long) (seconds * 1e9), vocab, minLen, maxLen, newTokens);
        double elapsed = (System.nanoTime() - start) / 1e9;
        List<Long> ttft = new ArrayList<>(r.ttftNanos());
        Collections.sort(ttft);
        return new Run(mode, clients, elapsed, r.requests(), r.tokens(), r.errors(), percentile(ttft, 0.5),
                percentile(ttft, 0.99), rssBefore, rssMiB(), heapBefore, heapMiB(), server.batches() - batchesBefore);
    }

    record Result(int requests, long tokens, int errors, List<Long> ttftNanos) {
    }

    /** {@code clients} threads sending streamed requests one after another until {@code nanos} have passed. */
    private static Result load(FerryServer server, int clients, long nanos, int vocab, int minLen, int maxLen,
                               int newTokens) throws Exception {
        // the client's own threads are shut down after the run: left running, they kept the JVM from exiting
        ExecutorService clientThreads = Executors.newFixedThreadPool(4);
        try {
            return load(server, clients, nanos, vocab, minLen, maxLen, newTokens, clientThreads);
        } finally {
            clientThreads.shutdownNow();
        }
    }

    private static Result load(FerryServer server, int clients, long nanos, int vocab, int minLen, int maxLen,
                               int newTokens, ExecutorService clientThreads) throws Exception {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .executor(clientThreads).build();
        URI uri = URI.create(server.baseUri() + "/completions");
        long deadline = System.nanoTime() + nanos;
        AtomicInteger requests = new AtomicInteger();
        AtomicInteger errors = new AtomicInteger();
        AtomicLong tokens = new AtomicLong();
        List<Long> ttft = Collections.synchronizedList(new ArrayList<>());
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        List<Future<?>> futures = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            Random random = new Random(c);
            futures.add(pool.submit(() -> {
                do {
                    int len = minLen + random.nextInt(maxLen - minLen + 1);
                    StringBuilder ids = new StringBuilder();
                    for (int i = 0; i < len; i++) {
                        ids.append(i == 0 ? "" : ",").append(random.nextInt(vocab));
                    }
                    String body = "{\"prompt\": [" + ids + "], \"max_tokens\": " + newTokens + ", \"temperature\": 0, "
                            + "\"stream\": true, \"stream_options\": {\"include_usage\": true}}";
                    long sent = System.nanoTime();
                    try {
                        HttpResponse<InputStream> resp = http.send(HttpRequest.newBuilder(uri)
                                .header("Content-Type", "application/json")
                                .POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                                HttpResponse.BodyHandlers.ofInputStream());
                        if (resp.statusCode() != 200) {
                            resp.body().close();
                            errors.incrementAndGet();
                            continue;
                        }
                        boolean first = true;
                        boolean done = false;
                        long got = -1;
                        try (BufferedReader in = new BufferedReader(new InputStreamReader(resp.body(),
                                StandardCharsets.UTF_8))) {
                            String line;
                            while ((line = in.readLine()) != null) {
                                if (!line.startsWith("data: ")) {
                                    continue;
                                }
                                if (first) {
                                    ttft.add(System.nanoTime() - sent);
                                    first = false;
                                }
                                String data = line.substring(6);
                                if (data.equals("[DONE]")) {
                                    done = true;
                                } else if (data.contains("\"error\"")) {
                                    got = -2;
                                } else if (data.contains("\"usage\":{")) {
                                    JsonNode usage = JSON.readTree(data).get("usage");
                                    got = usage.get("completion_tokens").asLong();
                                }
                            }
                        }
                        if (!done || got < 0) {
                            errors.incrementAndGet();
                        } else {
                            requests.incrementAndGet();
                            tokens.addAndGet(got);
                        }
                    } catch (Exception e) {
                        errors.incrementAndGet();
                    }
                } while (System.nanoTime() < deadline);
                return null;
            }));
        }
        try {
            for (Future<?> f : futures) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        return new Result(requests.get(), tokens.get(), errors.get(), ttft);
    }

    private static double percentile(List<Long> sorted, double p) {
        if (sorted.isEmpty()) {
            return Double.NaN;
        }
        int i = (int) Math.ceil(p * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i))) / 1e6;
    }

    private static long rssMiB() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
                }
            }
        } catch (Exception ignored) {
            // not Linux
        }
        return -1;
    }

    private static long heapMiB() {
        System.gc();
        Runtime rt = Runtime.getRuntime();
        return (rt.totalMemory() - rt.freeMemory()) >> 20;
    }
}
