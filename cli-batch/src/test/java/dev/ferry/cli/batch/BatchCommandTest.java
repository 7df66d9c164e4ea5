package dev.ferry.cli.batch;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.cli.Cli;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry batch} on a local Spark: what single generations give, retried tasks, bad rows. */
class BatchCommandTest {

    @TempDir
    Path tmp;

    /** 64 prompts of 1..20 ids, one line each: {"id": i, "input_ids": [...]}. */
    static List<long[]> prompts() {
        Random random = new Random(64);
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            out.add(random.longs(1 + random.nextInt(20), 0, 256).toArray());
        }
        return out;
    }

    static Path jsonl(Path file, List<long[]> prompts) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < prompts.size(); i++) {
            sb.append("{\"id\": ").append(i).append(", \"input_ids\": [")
                    .append(Arrays.stream(prompts.get(i)).mapToObj(Long::toString).collect(Collectors.joining(", ")))
                    .append("]}\n");
        }
        return Files.writeString(file, sb.toString());
    }

    /** Every output line, by id: JSON lines from Spark's part files. */
    static Map<Long, JsonNode> rows(Path dir) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        Map<Long, JsonNode> out = new HashMap<>();
        int lines = 0;
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.getFileName().toString().startsWith("part-")).toList()) {
                for (String line : Files.readAllLines(f)) {
                    JsonNode n = mapper.readTree(line);
                    out.put(n.get("id").asLong(), n);
                    lines++;
                }
            }
        }
        assertThat(lines).as("lines, duplicates included").isEqualTo(out.size());
        return out;
    }

    static Cli batch(String... more) {
        List<String> args = new ArrayList<>(List.of("batch", "--model", Cli.model("tiny-llama"),
                "--max-new-tokens", "5", "--conf", "spark.driver.host=127.0.0.1", "--conf",
                "spark.driver.bindAddress=127.0.0.1"));
        args.addAll(List.of(more));
        Cli r = Cli.run(args.toArray(String[]::new));
        assertThat(r.exitCode()).as(r.toString()).isZero();
        return r;
    }

    @Test
    void sixtyFourPromptsThroughBatchEqualSixtyFourSingleGenerations() throws IOException {
        List<long[]> prompts = prompts();
        Path out = tmp.resolve("out");

        batch("--input", jsonl(tmp.resolve("in.jsonl"), prompts).toString(), "--output", out.toString(),
                "--batch-size", "8", "--partitions", "3", "--master", "local[2]");

        Map<Long, JsonNode> rows = rows(out);
        assertThat(rows).hasSize(64);
        for (int i = 0; i < 64; i++) {
            String ids = Arrays.stream(prompts.get(i)).mapToObj(Long::toString).collect(Collectors.joining(","));
            Cli single = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--input-ids", ids,
                    "--max-new-tokens", "5", "--format", "json");
            assertThat(single.exitCode()).as(single.toString()).isZero();
            assertThat(rows.get((long) i).get("new_tokens")).as("row %d", i).isEqualTo(single.json().get("new_tokens"));
            assertThat(rows.get((long) i).get("error").isNull()).isTrue();
        }
    }

    @Test
    void aPreviousBatchOutputIsMarkedAndReplacedWithOverwrite() throws IOException {
        Path in = jsonl(tmp.resolve("in.jsonl"), prompts().subList(0, 3));
        Path out = tmp.resolve("out");
        batch("--input", in.toString(), "--output", out.toString(), "--master", "local[1]");
        assertThat(out.resolve(BatchOutput.MARKER)).isRegularFile();

        Cli again = batch("--input", in.toString(), "--output", out.toString(), "--master", "local[1]", "--overwrite");

        assertThat(again.out()).contains("3 rows (0 with an error)");
        assertThat(rows(out)).hasSize(3);
        assertThat(out.resolve(BatchOutput.MARKER)).isRegularFile();
    }

    @Test
    void aTaskThatFailsOnceIsRetriedAndTheOutputHasEachOfTheSixtyFourRowsOnce() throws IOException {
        Path out = tmp.resolve("out");

        Cli r = batch("--input", jsonl(tmp.resolve("in.jsonl"), prompts()).toString(), "--output", out.toString(),
                "--batch-size", "4", "--partitions", "4", "--master", "local[2,2]", "--fail-once-partition", "1");

        assertThat(r.out()).contains("1 task attempt(s) failed and were retried").contains("64 rows (0 with an error)");
        Map<Long, JsonNode> rows = rows(out);
        assertThat(rows.keySet()).containsExactlyInAnyOrderElementsOf(
                java.util.stream.LongStream.range(0, 64).boxed().toList());
        assertThat(rows.values()).allSatisfy(n -> assertThat(n.get("new_tokens").size()).isEqualTo(5));
    }

    @Test
    void theRetriedAttemptIsCountedWhenASlowListenerDelaysSparksEvents() throws IOException {
        Cli r = batch("--input", jsonl(tmp.resolve("in.jsonl"), prompts().subList(0, 8)).toString(), "--output",
                tmp.resolve("out").toString(), "--batch-size", "2", "--partitions", "2", "--master", "local[2,2]",
                "--fail-once-partition", "1", "--conf", "spark.extraListeners=" + SlowListener.class.getName());

        assertThat(r.out()).contains("1 task attempt(s) failed and were retried").contains("8 rows (0 with an error)");
    }

    @Test
    void aBadRowLandsInTheErrorColumnAndTheOthersRun() throws IOException {
        List<long[]> prompts = new ArrayList<>(prompts().subList(0, 5));
        prompts.set(2, new long[] {1, 999});
        Path out = tmp.resolve("out");

        Cli r = batch("--input", jsonl(tmp.resolve("in.jsonl"), prompts).toString(), "--output", out.toString(),
                "--master", "local[1]");

        assertThat(r.out()).contains("5 rows (1 with an error)");
        Map<Long, JsonNode> rows = rows(out);
        assertThat(rows.get(2L).get("error").asText()).contains("999").contains("vocab_size is 256");
        assertThat(rows.get(2L).get("new_tokens").isNull()).isTrue();
        assertThat(rows.get(3L).get("new_tokens").size()).isEqualTo(5);
        assertThat(rows.get(3L).get("error").isNull()).isTrue();
    }

    @Test
    void rowsWithInputIdsAsAStringAreRefusedNamingTheRowNotTokenisedAsText() throws IOException {
        Path in = Files.writeString(tmp.resolve("in.jsonl"), "{\"id\": 0, \"input_ids\": [1, 2, 3]}\n"
                + "{\"id\": 1, \"input_ids\": \"1, 2, 3\"}\n");
        Path out = tmp.resolve("out");
        Cli r = Cli.run("batch", "--model", Cli.model("tiny-llama"), "--input", in.toString(), "--output",
                out.toString(), "--master", "local[1]", "--conf", "spark.driver.host=127.0.0.1", "--conf",
                "spark.driver.bindAddress=127.0.0.1");

        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("row with id 1").contains("input_ids as a string").contains("\"1, 2, 3\"")
                .contains("array of token ids");
        assertThat(Files.exists(out)).isFalse();
    }

    @Test
    void aFailFastJobPrintsFerrysOneLineCauseFirstNotSparksTrace() throws IOException {
        List<long[]> prompts = new ArrayList<>(prompts().subList(0, 3));
        prompts.set(1, new long[] {1, 999});
        Cli r = Cli.run("batch", "--model", Cli.model("tiny-llama"), "--input",
                jsonl(tmp.resolve("in.jsonl"), prompts).toString(), "--output", tmp.resolve("out").toString(),
                "--master", "local[1]", "--fail-fast", "--conf", "spark.driver.host=127.0.0.1", "--conf",
                "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.task.maxFailures=1");

        assertThat(r.exitCode()).as(r.toString()).isEqualTo(1);
        List<String> lines = r.err().lines().filter(l -> !l.isBlank()).toList();
        assertThat(lines).as(r.err()).hasSize(1);
        assertThat(lines.get(0)).startsWith("ferry batch: error: ").contains("999").contains("vocab_size is 256")
                .contains("in Spark: ").doesNotContain("\tat ");
        assertThat(lines.get(0).indexOf("999")).isLessThan(lines.get(0).indexOf("in Spark: "));
    }

    @Test
    void theEmbedTaskWritesOneEmbeddingPerRow() throws IOException {
        Path out = tmp.resolve("out");

        Cli r = batch("--input", jsonl(tmp.resolve("in.jsonl"), prompts().subList(0, 6)).toString(), "--output",
                out.toString(), "--task", "embed", "--batch-size", "4", "--master", "local[1]");

        assertThat(r.out()).contains("6 rows (0 with an error)");
        Map<Long, JsonNode> rows = rows(out);
        assertThat(rows.values()).allSatisfy(n -> {
            assertThat(n.get("embedding").size()).isEqualTo(64); // tiny-llama's hidden size
            assertThat(n.has("new_tokens")).isFalse();
        });
    }

    @Test
    void parquetInParquetOutKeepsEveryRowsIdAndTokens() throws IOException {
        List<long[]> prompts = prompts().subList(0, 6);
        org.apache.spark.sql.SparkSession spark = org.apache.spark.sql.SparkSession.builder().master("local[1]")
                .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate();
        try {
            Path in = tmp.resolve("in.parquet");
            spark.read().json(jsonl(tmp.resolve("in.jsonl"), prompts).toString()).write().parquet(in.toString());
            Path out = tmp.resolve("out");

            batch("--input", in.toString(), "--output", out.toString(), "--output-format", "parquet");

            Map<Long, long[]> rows = new HashMap<>();
            for (org.apache.spark.sql.Row r : spark.read().parquet(out.toString()).collectAsList()) {
                rows.put(r.getLong(r.fieldIndex("id")), r.<Long>getList(r.fieldIndex("new_tokens")).stream()
                        .mapToLong(Long::longValue).toArray());
            }
            assertThat(rows).hasSize(6);
            Path jsonOut = tmp.resolve("json-out");
            batch("--input", tmp.resolve("in.jsonl").toString(), "--output", jsonOut.toString());
            rows(jsonOut).forEach((id, n) -> assertThat(rows.get(id)).containsExactly(Cli.longs(n.get("new_tokens"))));
        } finally {
            spark.stop();
        }
    }
}
