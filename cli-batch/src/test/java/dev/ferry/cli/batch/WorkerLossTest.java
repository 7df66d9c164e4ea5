package dev.ferry.cli.batch;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.cli.Cli;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry batch} on a Spark standalone cluster (a master and two workers, each its own JVM, executors launched by
 * the workers) loses a worker in the middle of the generation stage: the worker JVM and its executor are killed with
 * SIGKILL just as that executor starts a task, after another task of the stage has been written. The job still
 * finishes, every input row is written exactly once, and the rows equal those of the same job in local mode.
 *
 * <p>Sizes: 4 tasks of 8 rows, each row generated alone for up to 64 new tokens (a few seconds per task on a loaded
 * 2-core machine), so that the lost task is surely running when its executor dies and tasks remain for the
 * survivor. The job waits until both executors have registered, so the first two tasks go one to each.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class WorkerLossTest {

    static final int ROWS = 32;
    static final int PARTITIONS = 4;
    static final String[] JOB = {"--max-new-tokens", "64", "--batch-size", "1", "--partitions",
            String.valueOf(PARTITIONS)};

    @TempDir
    static Path tmp;

    static StandaloneCluster cluster;
    static LoseExecutorMidStage.Plan plan;
    static final List<Long> killed = new CopyOnWriteArrayList<>();
    static Cli onCluster;
    static Cli inLocalMode;
    static Path clusterOut;
    static Map<Long, JsonNode> clusterRows;
    static Map<Long, JsonNode> localRows;

    @BeforeAll
    static void runTheJobOnAClusterThatLosesAWorkerAndInLocalMode() throws IOException, InterruptedException {
        Path input = BatchCommandTest.jsonl(tmp.resolve("in.jsonl"), prompts());
        long start = System.nanoTime();
        cluster = StandaloneCluster.start(tmp.resolve("cluster"), 2, "1g", Duration.ofMinutes(2));
        plan = new LoseExecutorMidStage.Plan(PARTITIONS,
                (app, executor) -> killed.addAll(cluster.killWorker(cluster.workerOf(app, executor))));
        LoseExecutorMidStage.arm(plan);
        clusterOut = tmp.resolve("out-cluster");
        try {
            onCluster = Cli.run(args(input, clusterOut, "--master", cluster.url(),
                    "--conf", "spark.extraListeners=" + LoseExecutorMidStage.class.getName(),
                    "--conf", "spark.ui.enabled=false", "--conf", "spark.executor.memory=512m",
                    // C1 and one GC thread, as for the master and workers: sooner started on a busy machine;
                    // DJL offline, as in this JVM (libtorch comes from the class path)
                    "--conf", "spark.executor.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC "
                            + "-Dai.djl.offline=true",
                    // tasks start once both executors are there (two 1-core workers), or after 2 minutes
                    "--conf", "spark.cores.max=2", "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0",
                    "--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=120s"));
        } finally {
            LoseExecutorMidStage.arm(null);
        }
        long clusterSeconds = (System.nanoTime() - start) / 1_000_000_000L;
        if (plan.lostExecutor != null) {
            assertThat(plan.lost.await(1, TimeUnit.MINUTES)).as("the worker's JVMs are gone within a minute").isTrue();
        }
        assertThat(onCluster.exitCode()).as("%s%n%s", onCluster, cluster.logs()).isZero();
        clusterRows = BatchCommandTest.rows(clusterOut);

        Path localOut = tmp.resolve("out-local");
        inLocalMode = Cli.run(args(input, localOut, "--master", "local[2]"));
        assertThat(inLocalMode.exitCode()).as(inLocalMode.toString()).isZero();
        localRows = BatchCommandTest.rows(localOut);
        System.out.printf("WorkerLossTest: killed pids %s (a worker and its executor); cluster start and job %d s, "
                + "local job %d s%n", killed, clusterSeconds, (System.nanoTime() - start) / 1_000_000_000L
                - clusterSeconds);
    }

    @AfterAll
    static void stopTheCluster() {
        LoseExecutorMidStage.arm(null);
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void theWorkerIsKilledWhileItsExecutorRunsATaskOfTheGenerationStage() {
        assertThat(plan.lossFailed).isNull();
        assertThat(plan.lostExecutor).as("the executor lost").isNotNull();
        assertThat(killed).as("the worker's pid and its executor's").hasSizeGreaterThanOrEqualTo(2);
        assertThat(plan.attemptsLostWithExecutor).as("executors of attempts that ended with ExecutorLostFailure")
                .contains(plan.lostExecutor);
        assertThat(onCluster.out()).contains("task attempt(s) failed and were retried");
    }

    @Test
    void theJobFinishesOnTheClusterWithEveryRow() {
        assertThat(onCluster.out()).contains(ROWS + " rows (0 with an error)").contains("master " + cluster.url());
    }

    @Test
    void everyInputRowIsWrittenExactlyOnce() {
        // BatchCommandTest.rows also counts lines: a row written twice fails there
        assertThat(clusterRows.keySet()).containsExactlyInAnyOrderElementsOf(
                LongStream.range(0, ROWS).boxed().toList());
    }

    @Test
    void theLostAttemptLeavesNothingInTheOutput() throws IOException {
        try (Stream<Path> files = Files.list(clusterOut)) {
            assertThat(files.map(f -> f.getFileName().toString()))
                    .allMatch(n -> n.matches("\\.?part-.*|\\.?_SUCCESS(\\.crc)?|\\.?" + BatchOutput.MARKER + "(\\.crc)?"))
                    .contains("_SUCCESS");
        }
    }

    @Test
    void theRowsEqualThoseOfTheSameJobInLocalMode() {
        assertThat(inLocalMode.out()).contains("master local[2]");
        assertThat(localRows).hasSize(ROWS);
        assertThat(clusterRows).isEqualTo(localRows);
        assertThat(clusterRows.values()).allSatisfy(n -> assertThat(n.get("error").isNull()).isTrue());
    }

    private static String[] args(Path input, Path output, String... more) {
        List<String> a = new ArrayList<>(List.of("batch", "--model", Cli.model("tiny-llama"), "--input",
                input.toString(), "--output", output.toString(), "--conf", "spark.driver.host=127.0.0.1", "--conf",
                "spark.driver.bindAddress=127.0.0.1"));
        a.addAll(List.of(JOB));
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    /** {@link #ROWS} prompts of 1..20 ids below tiny-llama's vocabulary of 256. */
    private static List<long[]> prompts() {
        Random random = new Random(20);
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < ROWS; i++) {
            out.add(random.longs(1 + random.nextInt(20), 0, 256).toArray());
        }
        return out;
    }
}
