package dev.ferry.cli;

import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.io.RegularFiles;
import dev.ferry.core.load.Ferry;
import dev.ferry.serve.FerryServer;
import dev.ferry.serve.ServeOptions;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code ferry serve}: loads a model dispatched over the devices and serves it with OpenAI's HTTP API
 * ({@link FerryServer}) until SIGTERM or Ctrl-C, which drain the requests in flight before the model is closed.
 */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Serves a model over HTTP with OpenAI's API: GET /v1/models, POST /v1/chat/completions, "
                + "/v1/completions (whole or streamed) and /v1/embeddings. Concurrent requests decode together in "
                + "batches. SIGTERM drains the requests in flight, then exits."})
final class ServeCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", converter = ModelDirConverter.class,
            description = "Model folder (config.json, safetensors, tokenizer.json; a chat template for chat).")
    Path model;

    @Option(names = "--backend", paramLabel = "pytorch|onnx", description = "Backend (default: the folder's).")
    String backend;

    @Option(names = "--device-map", paramLabel = "FILE.json|auto", defaultValue = "auto",
            description = "A device map in Accelerate's JSON form, or auto (default) planned under --max-memory.")
    String deviceMap;

    @Option(names = "--max-memory", paramLabel = "DEV=SIZE,...", description = "Budgets, e.g. 0=20GiB,cpu=60GiB.")
    String maxMemory;

    @Option(names = "--quantize", paramLabel = "SCHEME", converter = QuantizeSchemeConverter.class,
            description = "int8: the decoder layers' Linear weights quantized as they are loaded (PyTorch backend).")
    dev.ferry.core.quant.QuantizationScheme quantize;

    @Option(names = "--prefetch", paramLabel = "N", defaultValue = "1",
            description = "Offloaded blocks read and moved ahead of the forward, as many as N of the largest streamed "
                    + "block take (default: ${DEFAULT-VALUE}; 0 turns prefetch off).")
    int prefetch;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to listen on (default ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", required = true, paramLabel = "N", description = "Port to listen on (0: any free one).")
    int port;

    @Option(names = "--served-model-name", paramLabel = "NAME",
            description = "The model id clients use (default: the folder's name).")
    String name;

    @Option(names = "--max-batch", defaultValue = "16", paramLabel = "N",
            description = "Requests decoded together at most (default ${DEFAULT-VALUE}).")
    int maxBatch;

    @Option(names = "--max-queued", defaultValue = "64", paramLabel = "N",
            description = "Requests waiting at most; more get 429 (default ${DEFAULT-VALUE}).")
    int maxQueued;

    @Option(names = "--request-timeout", defaultValue = "300", paramLabel = "SECONDS",
            description = "A request's time limit, queue included (default ${DEFAULT-VALUE}).")
    long timeoutSeconds;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        ServeOptions options;
        try {
            options = ServeOptions.defaults(name != null ? name : model.getFileName().toString(), port)
                    .withHost(host).withMaxBatch(maxBatch).withMaxQueued(maxQueued)
                    .withRequestTimeout(Duration.ofSeconds(timeoutSeconds));
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage(), e);
        }
        DispatchedModel loaded;
        try {
            Ferry.Builder builder = Ferry.model(model).deviceMap(deviceMapArg()).prefetch(prefetch);
            if (maxMemory != null) {
                builder.maxMemory(maxMemory);
            }
            if (backend != null) {
                builder.backend(backend);
            }
            if (quantize != null) {
                builder.quantize(quantize);
            }
            loaded = builder.load();
        } catch (IllegalArgumentException e) { // a bad map, budget or backend, named before any weight is read
            throw new UsageException(e.getMessage(), e);
        }
        FerryServer server;
        try {
            server = FerryServer.start(loaded, options);
        } catch (IOException | RuntimeException e) {
            loaded.close();
            throw e;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> { // SIGTERM, SIGINT: drain, then close the model
            try {
                server.close();
                loaded.close();
            } finally {
                stopped.countDown();
            }
        }, "ferry-serve-shutdown"));
        out.println("serving " + options.modelName() + " on " + server.baseUri());
        out.flush();
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }

    private String deviceMapArg() {
        if (!deviceMap.strip().endsWith(".json")) {
            return deviceMap;
        }
        String why = RegularFiles.problem(Path.of(deviceMap));
        if (why != null) {
            throw new UsageException("--device-map " + deviceMap + " " + why);
        }
        try {
            return Files.readString(Path.of(deviceMap));
        } catch (IOException e) {
            throw new UsageException("--device-map: cannot read " + deviceMap + ": " + e.getMessage(), e);
        }
    }
}
