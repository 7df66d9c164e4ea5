package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry serve} as a user runs it, in its own JVM: its greedy chat reply equals {@code ferry generate
 * --messages}'s text, and SIGTERM lets a stream in flight finish before the process exits.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ServeCommandTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    @TempDir
    static Path tmp;
    static Path model;
    static Process server;
    static String base;

    @BeforeAll
    static void start() throws IOException {
        model = Files.createDirectory(tmp.resolve("chat-model"));
        try (Stream<Path> files = Files.list(Cli.fixtures().resolve("tiny-llama"))) {
            for (Path f : files.toList()) {
                Files.copy(f, model.resolve(f.getFileName()));
            }
        }
        Files.copy(Cli.fixtures().resolve("tiny-qwen3/chat_template.jinja"), model.resolve("chat_template.jinja"));
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        server = new ProcessBuilder(java.toString(), "-cp", System.getProperty("java.class.path"),
                "-Dai.djl.offline=true", "-Xmx512m", FerryCli.class.getName(), "serve", "--model", model.toString(),
                "--port", "0", "--served-model-name", "chat").redirectErrorStream(true).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = out.readLine()) != null && !line.startsWith("serving ")) {
            // load logs
        }
        assertThat(line).as("the server's first line").isNotNull();
        base = line.substring(line.indexOf(" on ") + 4).strip();
        Thread drain = new Thread(() -> {
            try {
                while (out.readLine() != null) {
                    // keep the pipe empty
                }
            } catch (IOException ignored) {
                // the process ended
            }
        });
        drain.setDaemon(true);
        drain.start();
    }

    @AfterAll
    static void stop() {
        server.destroyForcibly();
    }

    private static String chat(int maxTokens, boolean stream) {
        return "{\"model\": \"chat\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": "
                + maxTokens + ", \"temperature\": 0, \"stream\": " + stream + "}";
    }

    private static HttpRequest post(String body) {
        return HttpRequest.newBuilder(URI.create(base + "/chat/completions")).header("Content-Type",
                "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }

    @Test
    @Order(1)
    void theGreedyReplyEqualsFerryGenerateWithMessages() throws Exception {
        JsonNode reply = JSON.readTree(HTTP.send(post(chat(10, false)), HttpResponse.BodyHandlers.ofString()).body());
        Path messages = Files.writeString(tmp.resolve("m.json"), "[{\"role\": \"user\", \"content\": \"Hi\"}]");
        Cli generated = Cli.run("generate", "--model", model.toString(), "--messages", messages.toString(),
                "--max-new-tokens", "10", "--format", "json");
        assertThat(generated.exitCode()).as(generated.err()).isZero();
        assertThat(reply.get("choices").get(0).get("message").get("content").asText())
                .isEqualTo(generated.json().get("text").asText());
        assertThat(reply.get("usage").get("prompt_tokens").asInt())
                .isEqualTo(generated.json().get("prompt_ids").size());
    }

    @Test
    @Order(3)
    void aNegativePrefetchIsAUsageErrorNamingTheOptionBeforeAnyWeightIsRead() {
        Cli r = Cli.run("serve", "--model", model.toString(), "--port", "0", "--prefetch", "-1");
        assertThat(r.exitCode()).isEqualTo(FerryCli.USAGE);
        assertThat(r.err()).contains("prefetch").contains("-1");
    }

    @Test
    @Order(2)
    void sigtermLetsAStreamInFlightFinishThenExits() throws Exception {
        HttpResponse<Stream<String>> r = HTTP.send(post(chat(40, true)), HttpResponse.BodyHandlers.ofLines());
        Iterator<String> lines = r.body().iterator();
        List<String> events = new ArrayList<>();
        while (events.isEmpty() && lines.hasNext()) {
            String line = lines.next();
            if (line.startsWith("data: ")) {
                events.add(line);
            }
        }
        server.destroy(); // SIGTERM
        lines.forEachRemaining(line -> {
            if (line.startsWith("data: ")) {
                events.add(line);
            }
        });
        assertThat(events).last().isEqualTo("data: [DONE]");
        assertThat(events.get(events.size() - 2)).contains("\"finish_reason\"");
        assertThat(server.waitFor(30, TimeUnit.SECONDS)).isTrue();
    }
}
