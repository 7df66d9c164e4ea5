package dev.ferry.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.chat.ChatMessage;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.Fixtures;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The server's protocol, errors, batching, bounds and shutdown, spoken to with the JDK's HTTP client. */
class ServerBehaviourTest {

    static final ObjectMapper JSON = new ObjectMapper();
    static final String NAME = "tiny";

    @TempDir
    static Path tmp;
    static DispatchedModel model;
    static FerryServer server;
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    @BeforeAll
    static void start() throws IOException {
        model = Ferry.model(ChatModels.llamaWithTemplate(tmp)).load();
        server = FerryServer.start(model, ServeOptions.defaults(NAME, 0));
    }

    @AfterAll
    static void stop() {
        server.close();
        model.close();
    }

    record Reply(int status, String body) {
        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new IllegalStateException(body, e);
            }
        }
    }

    static Reply post(FerryServer s, String path, String body) {
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(s.baseUri() + path))
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body))
                    .build(), HttpResponse.BodyHandlers.ofString());
            return new Reply(r.statusCode(), r.body());
        } catch (IOException e) {
            throw new IllegalStateException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static String chatBody(String content, int maxTokens, boolean stream) {
        return "{\"model\": \"" + NAME + "\", \"messages\": [{\"role\": \"user\", \"content\": \"" + content
                + "\"}], \"max_tokens\": " + maxTokens + ", \"temperature\": 0, \"stream\": " + stream + "}";
    }

    @Test
    void listsTheServedModel() throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(server.baseUri() + "/models")).build(),
                HttpResponse.BodyHandlers.ofString());
        JsonNode j = JSON.readTree(r.body());
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(j.get("object").asText()).isEqualTo("list");
        assertThat(j.get("data").get(0).get("id").asText()).isEqualTo(NAME);
    }

    @Test
    void aStreamEndsWithDoneAndItsDeltasMakeTheWholeReply() {
        Reply whole = post(server, "/chat/completions", chatBody("Hi", 10, false));
        Reply stream = post(server, "/chat/completions", chatBody("Hi", 10, true));
        assertThat(stream.status()).isEqualTo(200);
        List<String> events = new ArrayList<>();
        for (String line : stream.body().split("\n")) {
            if (line.startsWith("data: ")) {
                events.add(line.substring(6));
            }
        }
        assertThat(events).last().isEqualTo("[DONE]");
        StringBuilder text = new StringBuilder();
        String finish = null;
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode choice = new Reply(200, e).json().get("choices").get(0);
            text.append(choice.get("delta").path("content").asText(""));
            if (!choice.get("finish_reason").isNull()) {
                finish = choice.get("finish_reason").asText();
            }
        }
        JsonNode w = whole.json();
        assertThat(text.toString()).isEqualTo(w.get("choices").get(0).get("message").get("content").asText());
        assertThat(finish).isEqualTo(w.get("choices").get(0).get("finish_reason").asText());
        assertThat(w.get("usage").get("completion_tokens").asInt()).isEqualTo(10);
    }

    @Test
    void stopStringsEndTheReplyBeforeThem() {
        String text = post(server, "/chat/completions", chatBody("Hi", 10, false)).json().get("choices").get(0)
                .get("message").get("content").asText();
        String stop = text.substring(3, 4);
        String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 10, "
                + "\"temperature\": 0, \"stop\": [" + JSON.valueToTree(stop) + "]}";
        JsonNode choice = post(server, "/chat/completions", body).json().get("choices").get(0);
        assertThat(choice.get("message").get("content").asText()).isEqualTo(text.substring(0, text.indexOf(stop)));
        assertThat(choice.get("finish_reason").asText()).isEqualTo("stop");
    }

    @Test
    void badRequestsGetOpenAiErrorBodiesNamingTheField() {
        assertError(post(server, "/chat/completions", "{not json"), 400, null);
        assertError(post(server, "/chat/completions", "{\"messages\": []}"), 400, "messages");
        assertError(post(server, "/chat/completions", chatBody("Hi", 0, false)), 400, "max_tokens");
        assertError(post(server, "/chat/completions",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 2}"), 400, "n");
        assertError(post(server, "/chat/completions",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": \"hot\"}"), 400,
                "temperature");
        assertError(post(server, "/chat/completions",
                "{\"model\": \"gpt-4\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}"), 404, "model");
        assertError(post(server, "/chat/completions",
                "{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}"), 400, "messages");
        assertError(post(server, "/chat/completions", chatBody("x".repeat(500), 4, false)), 400, "messages");
        assertError(post(server, "/completions", "{\"prompt\": [1, 99999]}"), 400, "prompt");
        assertError(post(server, "/nowhere", "{}"), 404, null);
    }

    private static void assertError(Reply r, int status, String param) {
        assertThat(r.status()).as(r.body()).isEqualTo(status);
        JsonNode error = r.json().get("error");
        assertThat(error.get("message").asText()).isNotBlank();
        assertThat(error.get("type").asText()).isNotBlank();
        if (param != null) {
            assertThat(error.get("param").asText()).isEqualTo(param);
        }
    }

    @Test
    void aModelWithoutChatTemplateRefusesChatNamingIt() throws IOException {
        try (DispatchedModel plain = Ferry.model(Fixtures.model("tiny-llama")).load();
             FerryServer s = FerryServer.start(plain, ServeOptions.defaults("plain", 0))) {
            Reply r = post(s, "/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}");
            assertError(r, 400, "messages");
            assertThat(r.json().get("error").get("message").asText()).contains("no chat template");
        }
    }

    @Test
    void concurrentRequestsDecodeTogetherAndEachGetsWhatItGetsAlone() throws Exception {
        String[] questions = {"Hi", "Yo", "Hey there", "Ok"};
        int[] maxTokens = {6, 9, 4, 7};
        List<String> alone = new ArrayList<>();
        for (int i = 0; i < questions.length; i++) {
            alone.add(model.chat(List.of(ChatMessage.user(questions[i])), GenerationConfig.greedy(maxTokens[i]))
                    .text());
        }
        try (FerryServer s = FerryServer.start(model, ServeOptions.defaults(NAME, 0))) {
            ExecutorService pool = Executors.newFixedThreadPool(questions.length);
            List<Future<Reply>> replies = new ArrayList<>();
            for (int round = 0; round < 3; round++) {
                for (int i = 0; i < questions.length; i++) {
                    int q = i;
                    replies.add(pool.submit(() -> post(s, "/chat/completions",
                            chatBody(questions[q], maxTokens[q], q % 2 == 0))));
                }
            }
            for (int k = 0; k < replies.size(); k++) {
                Reply r = replies.get(k).get();
                assertThat(r.status()).isEqualTo(200);
                int q = k % questions.length;
                String text = q % 2 == 0 ? streamedText(r.body()) : r.json().get("choices").get(0).get("message")
                        .get("content").asText();
                assertThat(text).as(questions[q]).isEqualTo(alone.get(q));
            }
            pool.shutdown();
            assertThat(s.batches()).as("12 requests from 4 threads share batches").isLessThan(replies.size());
        }
    }

    static String streamedText(String body) {
        StringBuilder text = new StringBuilder();
        for (String line : body.split("\n")) {
            if (line.startsWith("data: {")) {
                text.append(new Reply(200, line.substring(6)).json().get("choices").get(0).path("delta")
                        .path("content").asText(""));
            }
        }
        return text.toString();
    }

    @Test
    void requestsBeyondTheQueueBoundGet429AndTheOthersComplete() throws Exception {
        ServeOptions tight = ServeOptions.defaults(NAME, 0).withMaxQueued(1).withMaxBatch(1);
        try (FerryServer s = FerryServer.start(model, tight)) {
            ExecutorService pool = Executors.newFixedThreadPool(8);
            List<Future<Reply>> replies = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                replies.add(pool.submit(() -> post(s, "/chat/completions", chatBody("Hi", 12, false))));
            }
            int ok = 0;
            int refused = 0;
            for (Future<Reply> f : replies) {
                Reply r = f.get();
                if (r.status() == 429) {
                    refused++;
                    assertThat(r.json().get("error").get("code").asText()).isEqualTo("queue_full");
                } else {
                    assertThat(r.status()).isEqualTo(200);
                    ok++;
                }
            }
            pool.shutdown();
            assertThat(refused).isPositive();
            assertThat(ok).isPositive();
        }
    }

    @Test
    void aRequestPastItsTimeLimitStopsWithFinishReasonLength() {
        ServeOptions quick = ServeOptions.defaults(NAME, 0).withRequestTimeout(Duration.ofMillis(1));
        try (FerryServer s = FerryServer.start(model, quick)) {
            Reply r = post(s, "/chat/completions", chatBody("Hi", 12, false));
            if (r.status() == 200) {
                JsonNode choice = r.json().get("choices").get(0);
                assertThat(choice.get("finish_reason").asText()).isEqualTo("length");
                assertThat(r.json().get("usage").get("completion_tokens").asInt()).isLessThan(12);
            } else {
                assertError(r, 503, null); // it ran out while still queued
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void closingDrainsAStreamInFlightAndRefusesNewRequests() throws Exception {
        FerryServer s = FerryServer.start(model, ServeOptions.defaults(NAME, 0));
        CompletableFuture<Reply> inFlight = CompletableFuture.supplyAsync(() -> post(s, "/chat/completions",
                chatBody("Hi", 12, true)));
        while (s.batches() == 0) {
            Thread.sleep(5);
        }
        CompletableFuture<Void> closing = CompletableFuture.runAsync(s::close);
        Reply r = inFlight.get();
        closing.get();
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.body()).contains("\"finish_reason\":\"length\"").endsWith("data: [DONE]\n\n");
        assertThat(streamedText(r.body())).isEqualTo(model.chat(List.of(ChatMessage.user("Hi")),
                GenerationConfig.greedy(12)).text());
    }
}
