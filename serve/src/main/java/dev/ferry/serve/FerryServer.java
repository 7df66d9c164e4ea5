package dev.ferry.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.ferry.core.chat.ChatTemplateException;
import dev.ferry.core.chat.NoChatTemplateException;
import dev.ferry.core.chat.ToolCalls;
import dev.ferry.core.generate.Cancellation;
import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.StopReason;
import dev.ferry.core.generate.TokenListener;
import dev.ferry.core.load.DispatchedModel;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An OpenAI-compatible HTTP server over one dispatched model: {@code GET /v1/models}, {@code POST
 * /v1/chat/completions} and {@code POST /v1/completions} (whole, or streamed as server-sent events ending with
 * {@code data: [DONE]}), {@code POST /v1/embeddings}, with {@code usage} counts. Generation requests share the model
 * through a {@link Scheduler} (requests that arrive together decode together, each getting what it would get alone),
 * with a bound on waiting requests (429 beyond it) and a time limit per request. Errors are OpenAI's
 * {@code {"error": {...}}} bodies with a 4xx status naming the field at fault; one request's error never reaches
 * another's.
 *
 * <p>The HTTP layer is the JDK's own {@code com.sun.net.httpserver} (no dependency, maintained with the JDK, chunked
 * responses for server-sent events) on a bounded pool of platform threads: Java 17 has no virtual threads, and the
 * model, not the socket layer, bounds how many requests can be in progress. A streamed response is written by its own
 * request thread from a queue the generation fills, so a slow client never slows the batch. The server knows nothing
 * of devices: requests enter as validated values and meet {@link DispatchedModel} through its batched generation.
 */
public final class FerryServer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(FerryServer.class);

    private final DispatchedModel model;
    private final ServeOptions options;
    private final HttpServer http;
    private final ThreadPoolExecutor threads;
    private final Scheduler scheduler;
    private final long created = System.currentTimeMillis() / 1000;
    private final AtomicInteger active = new AtomicInteger();
    private volatile boolean draining;
    private boolean stopped;

    private FerryServer(DispatchedModel model, ServeOptions options) throws IOException {
        this.model = model;
        this.options = options;
        this.scheduler = new Scheduler(model, options.maxBatch(), options.maxQueued());
        int poolSize = options.maxQueued() + options.maxBatch() + 32;
        AtomicInteger n = new AtomicInteger();
        this.threads = new ThreadPoolExecutor(poolSize, poolSize, 30, TimeUnit.SECONDS, new LinkedBlockingQueue<>(),
                r -> {
                    Thread t = new Thread(r, "ferry-serve-" + n.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                });
        threads.allowCoreThreadTimeOut(true);
        this.http = HttpServer.create(new InetSocketAddress(options.host(), options.port()), 256);
        http.setExecutor(threads);
        http.createContext("/", this::handle);
        http.start();
        LOG.info("serving {} on http://{}:{}/v1", options.modelName(), options.host(), port());
    }

    /** Starts serving {@code model}; the caller keeps owning the model (close it after {@link #close()}). */
    public static FerryServer start(DispatchedModel model, ServeOptions options) throws IOException {
        return new FerryServer(model, options);
    }

    /** The port it listens on (the one chosen when the options said 0). */
    public int port() {
        return http.getAddress().getPort();
    }

    /** {@code http://host:port/v1}, what OpenAI clients take as their base URL. */
    public URI baseUri() {
        return URI.create("http://" + options.host() + ":" + port() + "/v1");
    }

    /** Generation batches run so far. */
    public int batches() {
        return scheduler.batches();
    }

    /**
     * Drains and stops: new requests are answered 503, those queued or running finish (up to the drain timeout),
     * then the listener closes. Idempotent. The model stays open.
     */
    @Override
    public synchronized void close() {
        if (stopped) {
            return;
        }
        stopped = true;
        draining = true;
        boolean drained = scheduler.drain(options.drainTimeout().toMillis());
        long deadline = System.nanoTime() + options.drainTimeout().toNanos();
        while (active.get() > 0 && System.nanoTime() < deadline) { // responses still being written
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (!drained) {
            LOG.warn("shutdown: requests still in flight after {}; stopping anyway", options.drainTimeout());
        }
        http.stop(0);
        scheduler.close();
        threads.shutdownNow();
        LOG.info("stopped serving {}", options.modelName());
    }

    private void handle(HttpExchange exchange) {
        active.incrementAndGet();
        try (exchange) {
            try {
                route(exchange);
            } catch (ApiException e) {
                sendError(exchange, e);
            } catch (NoChatTemplateException | ChatTemplateException e) {
                sendError(exchange, ApiException.badRequest(e.getMessage(), "messages"));
            } catch (IllegalArgumentException e) {
                sendError(exchange, ApiException.badRequest(e.getMessage(), null));
            } catch (UnsupportedOperationException e) {
                sendError(exchange, ApiException.badRequest(e.getMessage(), null));
            } catch (IOException e) {
                LOG.debug("client gone: {}", e.toString());
            } catch (RuntimeException e) {
                LOG.warn("request failed", e);
                sendError(exchange, new ApiException(500, "server_error", "the server failed: " + e, null, null));
            }
        } finally {
            active.decrementAndGet();
        }
    }

    private void route(HttpExchange exchange) throws IOException {
        String path = exchange.getRequestURI().getPath();
        String method = exchange.getRequestMethod();
        if (path.endsWith("/") && path.length() > 1) {
            path = path.substring(0, path.length() - 1);
        }
        switch (path) {
            case "/health" -> {
                require(method, "GET");
                sendJson(exchange, draining ? 503 : 200, Requests.JSON.createObjectNode()
                        .put("status", draining ? "draining" : "ok"));
            }
            case "/v1/models" -> {
                require(method, "GET");
                ObjectNode list = Requests.JSON.createObjectNode().put("object", "list");
                list.putArray("data").add(modelCard());
                sendJson(exchange, 200, list);
            }
            case "/v1/chat/completions" -> {
                require(method, "POST");
                refuseWhileDraining();
                chat(exchange, body(exchange));
            }
            case "/v1/completions" -> {
                require(method, "POST");
                refuseWhileDraining();
                completion(exchange, body(exchange));
            }
            case "/v1/embeddings" -> {
                require(method, "POST");
                refuseWhileDraining();
                embeddings(exchange, body(exchange));
            }
            default -> {
                if (path.startsWith("/v1/models/")) {
                    require(method, "GET");
                    String id = path.substring("/v1/models/".length());
                    if (!id.equals(options.modelName())) {
                        throw new ApiException(404, "invalid_request_error", "The model '" + id + "' does not exist",
                                "model", "model_not_found");
                    }
                    sendJson(exchange, 200, modelCard());
                    return;
                }
                throw new ApiException(404, "invalid_request_error", "no route " + method + " " + path
                        + "; this server has GET /v1/models, POST /v1/chat/completions, /v1/completions and "
                        + "/v1/embeddings", null, "not_found");
            }
        }
    }

    private ObjectNode modelCard() {
        return Requests.JSON.createObjectNode().put("id", options.modelName()).put("object", "model")
                .put("created", created).put("owned_by", "ferry");
    }

    private static void require(String method, String expected) {
        if (!method.equals(expected)) {
            throw new ApiException(405, "invalid_request_error", "method " + method + " not allowed; use "
                    + expected, null, "method_not_allowed");
        }
    }

    private void refuseWhileDraining() {
        if (draining) {
            throw new ApiException(503, "server_error", "the server is shutting down", null, "shutting_down");
        }
    }

    private static JsonNode body(HttpExchange exchange) throws IOException {
        try (InputStream in = exchange.getRequestBody()) {
            return Requests.parse(in.readAllBytes());
        }
    }

    private void chat(HttpExchange exchange, JsonNode body) throws IOException {
        Requests.checkModel(body, options.modelName());
        Requests.Chat chat = Requests.chat(body, options.defaultMaxTokens());
        tokenizer("messages");
        long[] prompt = model.text().chatPrompt(chat.messages(), chat.tools(), Map.of());
        ToolCalls.Format toolCalls = chat.toolCallsWanted()
                ? ToolCalls.Format.of(model.text().chatTemplate().source()).orElse(null) : null;
        generate(exchange, prompt, chat.generation(), true, toolCalls);
    }

    private void completion(HttpExchange exchange, JsonNode body) throws IOException {
        Requests.checkModel(body, options.modelName());
        Requests.Completion c = Requests.completion(body, options.defaultMaxTokens());
        long[] prompt = c.promptIds() != null ? c.promptIds() : tokenizer("prompt").encode(c.prompt(), true);
        generate(exchange, prompt, c.generation(), false, null);
    }

    /** The model's tokenizer; a model without one takes token ids only (400 naming the field). */
    private dev.ferry.core.text.TextTokenizer tokenizer(String param) {
        return model.text().tokenizer().orElseThrow(() -> ApiException.badRequest("this model has no tokenizer.json: "
                + "send '" + param + "' as token ids", param));
    }

    private void checkPrompt(long[] prompt, boolean chat) {
        try {
            model.languageModel().tokenLimits().checkPrompt(prompt);
        } catch (IllegalArgumentException e) {
            throw new ApiException(400, "invalid_request_error", e.getMessage(), chat ? "messages" : "prompt",
                    "context_length_exceeded");
        }
    }

    /** One streamed event: a token's text, or the end. */
    private record Event(String delta, Completion done, Throwable failed) {
    }

    /**
     * {@code toolCalls}: the form in which the reply is read for tool calls ({@link ToolCalls}), which go out as
     * OpenAI's tool_calls; {@code null}: the reply is text.
     */
    private void generate(HttpExchange exchange, long[] prompt, Requests.Generation g, boolean chat,
                          ToolCalls.Format toolCalls)
            throws IOException {
        checkPrompt(prompt, chat);
        Cancellation cancellation = Cancellation.withTimeout(options.requestTimeout().toNanos());
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
        long now = System.currentTimeMillis() / 1000;
        if (!g.stream()) {
            Completion c = await(scheduler.submit(prompt, g.config(), TokenListener.NONE, cancellation));
            sendJson(exchange, 200, chat ? chatResponse(id, now, c, toolCalls) : completionResponse(id, now, c));
            return;
        }
        BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        CompletableFuture<Completion> result = scheduler.submit(prompt, g.config(),
                (token, delta) -> events.add(new Event(delta == null ? "" : delta, null, null)), cancellation);
        result.whenComplete((c, e) -> events.add(new Event(null, c, e)));
        Event first = take(events, cancellation);
        if (first.failed() != null) { // nothing sent yet: a proper status
            throw unwrap(first.failed());
        }
        exchange.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        exchange.getResponseHeaders().set("Cache-Control", "no-cache");
        exchange.sendResponseHeaders(200, 0);
        OutputStream out = exchange.getResponseBody();
        try {
            // the opening chunk goes out with the first token (a client's time to first token)
            sse(out, chat ? chunk(id, now, true, Requests.JSON.createObjectNode().put("role", "assistant")
                    .put("content", ""), null, g.includeUsage()) : chunk(id, now, false, null, null, g.includeUsage()));
            Event e = first;
            // with tool calls wanted, text that may be a call is held and read when the reply is complete
            ToolCalls.Stream calls = toolCalls == null ? null : new ToolCalls.Stream(toolCalls);
            while (true) {
                if (e.failed() != null) {
                    sse(out, errorBody(unwrap(e.failed())));
                    break;
                }
                if (e.done() != null) {
                    Completion c = e.done();
                    String finish = finishReason(c.stopReason());
                    if (calls != null && !calls.held().isEmpty()) {
                        ToolCalls.Parsed parsed = toolCalls.parse(calls.held());
                        String text = parsed.calls().isEmpty() ? calls.held() : parsed.content();
                        if (!text.isEmpty()) {
                            sse(out, chunk(id, now, true, Requests.JSON.createObjectNode().put("content", text), null,
                                    g.includeUsage()));
                        }
                        if (!parsed.calls().isEmpty()) {
                            ObjectNode delta = Requests.JSON.createObjectNode();
                            delta.set("tool_calls", toolCallsJson(parsed.calls(), true));
                            sse(out, chunk(id, now, true, delta, null, g.includeUsage()));
                            finish = "tool_calls";
                        }
                    }
                    sse(out, chunk(id, now, chat, chat ? Requests.JSON.createObjectNode() : null, finish,
                            g.includeUsage()));
                    if (g.includeUsage()) {
                        ObjectNode usage = Requests.JSON.createObjectNode().put("id", id)
                                .put("object", chat ? "chat.completion.chunk" : "text_completion")
                                .put("created", now).put("model", options.modelName());
                        usage.putArray("choices");
                        usage.set("usage", usage(c));
                        sse(out, usage);
                    }
                    break;
                }
                String text = e.delta();
                if (calls != null && !text.isEmpty()) {
                    text = calls.release(text);
                }
                if (!text.isEmpty()) { // held text (a split character, a possible stop string) sends nothing
                    ObjectNode delta = chat ? Requests.JSON.createObjectNode().put("content", text) : null;
                    ObjectNode chunk = chunk(id, now, chat, delta, null, g.includeUsage());
                    if (!chat) {
                        ((ObjectNode) chunk.get("choices").get(0)).put("text", text);
                    }
                    sse(out, chunk);
                }
                e = take(events, cancellation);
            }
            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException gone) {
            cancellation.cancel(); // the client left: its row stops at its next token, the others go on
            throw gone;
        }
    }

    private static Event take(BlockingQueue<Event> events, Cancellation cancellation) {
        try {
            return events.take();
        } catch (InterruptedException e) {
            cancellation.cancel();
            Thread.currentThread().interrupt();
            throw new ApiException(503, "server_error", "the server is stopping", null, "shutting_down");
        }
    }

    private static Completion await(CompletableFuture<Completion> result) {
        try {
            return result.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ApiException(503, "server_error", "the server is stopping", null, "shutting_down");
        } catch (ExecutionException e) {
            throw unwrap(e.getCause());
        }
    }

    private static ApiException unwrap(Throwable t) {
        Throwable c = t instanceof java.util.concurrent.CompletionException && t.getCause() != null ? t.getCause() : t;
        if (c instanceof ApiException api) {
            return api;
        }
        if (c instanceof IllegalArgumentException) {
            return ApiException.badRequest(c.getMessage(), null);
        }
        return new ApiException(500, "server_error", "generation failed: " + c, null, null);
    }

    /** OpenAI's {@code finish_reason}: the model ended or a stop string came ({@code stop}), else a limit ({@code length}). */
    static String finishReason(StopReason reason) {
        return reason == StopReason.EOS || reason == StopReason.STOP_STRING ? "stop" : "length";
    }

    private ObjectNode chunk(String id, long created, boolean chat, ObjectNode delta, String finishReason,
                             boolean withUsage) {
        ObjectNode o = Requests.JSON.createObjectNode().put("id", id)
                .put("object", chat ? "chat.completion.chunk" : "text_completion").put("created", created)
                .put("model", options.modelName());
        ObjectNode choice = o.putArray("choices").addObject().put("index", 0);
        if (chat) {
            choice.set("delta", delta);
        } else {
            choice.put("text", "");
        }
        choice.putNull("logprobs");
        if (finishReason == null) {
            choice.putNull("finish_reason");
        } else {
            choice.put("finish_reason", finishReason);
        }
        if (withUsage) {
            o.putNull("usage");
        }
        return o;
    }

    private ObjectNode chatResponse(String id, long created, Completion c, ToolCalls.Format toolCalls) {
        ObjectNode o = Requests.JSON.createObjectNode().put("id", id).put("object", "chat.completion")
                .put("created", created).put("model", options.modelName());
        ObjectNode choice = o.putArray("choices").addObject().put("index", 0);
        ObjectNode message = choice.putObject("message").put("role", "assistant").put("content", c.text());
        String finish = finishReason(c.stopReason());
        ToolCalls.Parsed parsed = toolCalls != null ? toolCalls.parse(c.text()) : null;
        if (parsed != null && !parsed.calls().isEmpty()) {
            if (parsed.content().isEmpty()) {
                message.putNull("content");
            } else {
                message.put("content", parsed.content());
            }
            message.set("tool_calls", toolCallsJson(parsed.calls(), false));
            finish = "tool_calls";
        }
        choice.putNull("logprobs");
        choice.put("finish_reason", finish);
        o.set("usage", usage(c));
        return o;
    }

    /** OpenAI's {@code tool_calls}: in a streamed delta each call also carries its {@code index}. */
    private static ArrayNode toolCallsJson(List<ToolCalls.Call> calls, boolean indexed) {
        ArrayNode a = Requests.JSON.createArrayNode();
        for (int i = 0; i < calls.size(); i++) {
            ToolCalls.Call call = calls.get(i);
            ObjectNode o = a.addObject();
            if (indexed) {
                o.put("index", i);
            }
            o.put("id", call.id()).put("type", "function");
            o.putObject("function").put("name", call.name()).put("arguments", call.arguments());
        }
        return a;
    }

    private ObjectNode completionResponse(String id, long created, Completion c) {
        ObjectNode o = Requests.JSON.createObjectNode().put("id", id).put("object", "text_completion")
                .put("created", created).put("model", options.modelName());
        ObjectNode choice = o.putArray("choices").addObject().put("index", 0).put("text", c.text());
        choice.putNull("logprobs");
        choice.put("finish_reason", finishReason(c.stopReason()));
        o.set("usage", usage(c));
        return o;
    }

    private static ObjectNode usage(Completion c) {
        return Requests.JSON.createObjectNode().put("prompt_tokens", c.promptTokens().length)
                .put("completion_tokens", c.tokens().length)
                .put("total_tokens", c.promptTokens().length + c.tokens().length);
    }

    private void embeddings(HttpExchange exchange, JsonNode body) throws IOException {
        Requests.checkModel(body, options.modelName());
        Requests.Embeddings e = Requests.embeddings(body);
        List<long[]> ids = e.ids().isEmpty()
                ? e.texts().stream().map(t -> tokenizer("input").encode(t, true)).toList() : e.ids();
        long[][] rows = ids.toArray(new long[0][]);
        int promptTokens = 0;
        for (long[] row : rows) {
            checkPrompt(row, false);
            promptTokens += row.length;
        }
        float[][] vectors = model.embed(rows);
        ObjectNode o = Requests.JSON.createObjectNode().put("object", "list");
        ArrayNode data = o.putArray("data");
        for (int i = 0; i < vectors.length; i++) {
            ObjectNode item = data.addObject().put("object", "embedding").put("index", i);
            if (e.base64()) {
                ByteBuffer b = ByteBuffer.allocate(vectors[i].length * 4).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : vectors[i]) {
                    b.putFloat(f);
                }
                item.put("embedding", Base64.getEncoder().encodeToString(b.array()));
            } else {
                ArrayNode v = item.putArray("embedding");
                for (float f : vectors[i]) {
                    v.add(f);
                }
            }
        }
        o.put("model", options.modelName());
        o.putObject("usage").put("prompt_tokens", promptTokens).put("total_tokens", promptTokens);
        sendJson(exchange, 200, o);
    }

    private static void sse(OutputStream out, JsonNode event) throws IOException {
        out.write(("data: " + Requests.JSON.writeValueAsString(event) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static ObjectNode errorBody(ApiException e) {
        ObjectNode o = Requests.JSON.createObjectNode();
        ObjectNode error = o.putObject("error").put("message", e.getMessage()).put("type", e.type());
        if (e.param() == null) {
            error.putNull("param");
        } else {
            error.put("param", e.param());
        }
        if (e.code() == null) {
            error.putNull("code");
        } else {
            error.put("code", e.code());
        }
        return o;
    }

    private static void sendError(HttpExchange exchange, ApiException e) {
        try {
            sendJson(exchange, e.status(), errorBody(e));
        } catch (IOException | RuntimeException ignored) {
            // headers already sent (a stream that failed part way) or the client gone: nothing more to say
        }
    }

    private static void sendJson(HttpExchange exchange, int status, JsonNode body) throws IOException {
        byte[] bytes = Requests.JSON.writeValueAsBytes(body);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }
}
