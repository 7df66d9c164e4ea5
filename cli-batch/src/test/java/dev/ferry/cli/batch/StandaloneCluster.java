package dev.ferry.cli.batch;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A Spark standalone cluster for tests: a master and N workers, each its own JVM on 127.0.0.1, started from this
 * test's class path (what {@code spark/standalone.sh} does from {@code cli-batch/target/lib}, which exists only after
 * {@code package}). Every port is chosen by the JVM that binds it (0), so two clusters never collide. Workers launch
 * executors as on a real cluster: their class path is the test class path too (through {@code SPARK_DIST_CLASSPATH},
 * which Spark's launcher appends to {@code SPARK_HOME/jars}, empty here).
 *
 * <p>{@link #close()} kills every JVM this cluster started, the executors its workers launched included, and only
 * those: processes are held by their {@link ProcessHandle}, never looked up by name.
 */
final class StandaloneCluster implements AutoCloseable {

    private static final Pattern MASTER_URL = Pattern.compile("Starting Spark master at (spark://[0-9.]+:[0-9]+)");
    private static final String REGISTERED = "Successfully registered with master";

    private final Path dir;
    private final Process master;
    private final List<Process> workers = new ArrayList<>();
    /** Executors of killed workers, taken before the kill (a killed worker's children are re-parented). */
    private final List<ProcessHandle> launched = new CopyOnWriteArrayList<>();
    private String url;

    private StandaloneCluster(Path dir, Process master) {
        this.dir = dir;
        this.master = master;
    }

    /**
     * Starts a master and {@code workers} workers (1 core, {@code workerMemory} each) under {@code dir} (logs in
     * {@code dir/logs}, each worker's files in {@code dir/work/i}), and waits until every worker has registered.
     *
     * @throws IllegalStateException naming the log when a JVM exits or does not get there within {@code timeout}
     */
    static StandaloneCluster start(Path dir, int workers, String workerMemory, Duration timeout) throws IOException {
        Path home = Files.createDirectories(dir.resolve("home"));
        Files.createDirectories(home.resolve("jars"));
        Files.createDirectories(home.resolve("conf"));
        Files.createDirectories(dir.resolve("logs"));
        long deadline = System.nanoTime() + timeout.toNanos();
        StandaloneCluster cluster = new StandaloneCluster(dir, launch(dir, "master",
                List.of("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", "0",
                        "--webui-port", "0")));
        try {
            cluster.url = cluster.await(cluster.master, "master", MASTER_URL, deadline).group(1);
            for (int i = 1; i <= workers; i++) {
                Path work = Files.createDirectories(dir.resolve("work").resolve(String.valueOf(i)));
                cluster.workers.add(launch(dir, "worker-" + i, List.of("org.apache.spark.deploy.worker.Worker",
                        "--host", "127.0.0.1", "--port", "0", "--webui-port", "0", "--cores", "1", "--memory",
                        workerMemory, "--work-dir", work.toString(), cluster.url)));
            }
            for (int i = 1; i <= workers; i++) {
                cluster.await(cluster.workers.get(i - 1), "worker-" + i, Pattern.compile(REGISTERED), deadline);
            }
            return cluster;
        } catch (RuntimeException | IOException e) {
            cluster.close();
            throw e;
        }
    }

    /** The master's URL, {@code spark://127.0.0.1:PORT}. */
    String url() {
        return url;
    }

    /**
     * The worker (1-based) that launched executor {@code executorId} of application {@code appId}: a worker makes
     * {@code WORK_DIR/APP_ID/EXECUTOR_ID} before it starts the executor.
     *
     * @throws IllegalStateException when no worker of this cluster launched it
     */
    int workerOf(String appId, String executorId) {
        for (int i = 1; i <= workers.size(); i++) {
            if (Files.isDirectory(dir.resolve("work").resolve(String.valueOf(i)).resolve(appId).resolve(executorId))) {
                return i;
            }
        }
        throw new IllegalStateException("no worker of this cluster launched executor " + executorId + " of " + appId);
    }

    /**
     * Loses worker {@code i} as when its machine goes away: SIGKILL to the worker JVM (by its pid) and to the
     * executor JVMs it launched (its descendants, taken before the kill), then waits until they are gone.
     *
     * @return the pids killed, the worker's first
     */
    List<Long> killWorker(int i) {
        Process worker = workers.get(i - 1);
        List<ProcessHandle> executors = worker.descendants().toList();
        launched.addAll(executors);
        List<Long> pids = new ArrayList<>();
        pids.add(worker.pid());
        worker.destroyForcibly(); // SIGKILL on Linux and macOS
        for (ProcessHandle e : executors) {
            pids.add(e.pid());
            e.destroyForcibly();
        }
        await(worker.toHandle());
        executors.forEach(StandaloneCluster::await);
        return pids;
    }

    /** The last lines of every log of this cluster, workers' executors included, for a failure message. */
    String logs() {
        StringBuilder sb = new StringBuilder();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".log") || p.getFileName().toString().equals("stderr"))
                    .sorted().toList()) {
                List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
                sb.append("--- ").append(dir.relativize(f)).append('\n');
                lines.subList(Math.max(0, lines.size() - 30), lines.size()).forEach(l -> sb.append(l).append('\n'));
            }
        } catch (IOException | UncheckedIOException e) {
            sb.append("(cannot read the logs: ").append(e).append(")\n");
        }
        return sb.toString();
    }

    /** Kills the workers (and the executors they launched), then the master; waits for each to be gone. */
    @Override
    public void close() {
        List<ProcessHandle> all = new ArrayList<>(launched);
        for (Process w : workers) {
            all.addAll(w.descendants().toList());
            all.add(w.toHandle());
        }
        all.addAll(master.descendants().toList());
        all.add(master.toHandle());
        all.forEach(ProcessHandle::destroyForcibly);
        all.forEach(StandaloneCluster::await);
    }

    private static void await(ProcessHandle p) {
        try {
            p.onExit().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("process " + p.pid() + " is still alive 30 s after SIGKILL", e);
        }
    }

    /** Waits until {@code process}'s log shows {@code line}; fails naming the log when it exits or time is up. */
    private Matcher await(Process process, String name, Pattern line, long deadline) {
        Path log = dir.resolve("logs").resolve(name + ".log");
        while (true) {
            try {
                Matcher m = line.matcher(Files.readString(log, StandardCharsets.ISO_8859_1));
                if (m.find()) {
                    return m;
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            if (!process.isAlive()) {
                throw new IllegalStateException(name + " exited with " + process.exitValue() + " before '"
                        + line.pattern() + "'; its log:\n" + logs());
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException(name + " did not log '" + line.pattern() + "' in time; its log:\n"
                        + logs());
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for " + name, e);
            }
        }
    }

    private static Process launch(Path dir, String name, List<String> mainAndArgs) throws IOException {
        String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        // the JDK-internals flags Spark needs on Java 17: those this test JVM got from the POM (spark.java17.opens)
        for (String arg : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (arg.startsWith("--add-") || arg.startsWith("-XX:+IgnoreUnrecognizedVMOptions")
                    || arg.startsWith("-Djdk.reflect.") || arg.startsWith("-Dio.netty.")) {
                cmd.add(arg);
            }
        }
        // the master and workers only keep books: C1 and one GC thread start them sooner on a busy machine
        cmd.addAll(List.of("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=info", "-cp", classPath));
        cmd.addAll(mainAndArgs);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("logs").resolve(name + ".log").toFile());
        Map<String, String> env = pb.environment();
        env.put("SPARK_HOME", dir.resolve("home").toString());
        env.put("SPARK_CONF_DIR", dir.resolve("home").resolve("conf").toString());
        env.put("SPARK_LOCAL_DIRS", Files.createDirectories(dir.resolve("local")).toString());
        env.put("SPARK_LOCAL_IP", "127.0.0.1");
        // Spark's launcher asks for it when SPARK_HOME is no Spark build tree
        env.put("SPARK_SCALA_VERSION", "2.13");
        env.put("SPARK_DIST_CLASSPATH", classPath);
        return pb.start();
    }
}
