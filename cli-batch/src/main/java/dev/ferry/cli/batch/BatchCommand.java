package dev.ferry.cli.batch;

import dev.ferry.cli.DeviceMapArg;
import dev.ferry.cli.MaxMemoryArg;
import dev.ferry.cli.ModelDirConverter;
import dev.ferry.cli.ModelTrees;
import dev.ferry.cli.PreloadOption;
import dev.ferry.cli.UsageException;
import dev.ferry.core.tensor.Device;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.spark.FerryGenerator;
import dev.ferry.spark.GenerationSpec;
import dev.ferry.spark.ModelSpec;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ferry batch}: generation over a file of rows with Apache Spark, one dispatched model per executor JVM.
 * Local mode ({@code local[*]}) is the default, so it runs on one machine; under {@code spark-submit} the master
 * comes from Spark and the same command runs on a cluster. Output goes through Spark's DataFrame writer, whose
 * commit protocol keeps exactly one copy of each row when a task is retried.
 */
@Command(name = "batch", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generates for every row of a JSON-lines or Parquet file with Apache Spark, one dispatched "
                + "model per executor, rows in batches; writes {\"id\", \"new_tokens\", \"error\"} per row "
                + "({\"id\", \"embedding\", \"error\"} with --task embed).",
                "Input rows: {\"id\": ..., \"input_ids\": [...]} or {\"id\": ..., \"prompt\": \"...\"} (needs "
                        + "tokenizer.json). A row that cannot run gets its reason in \"error\" unless --fail-fast."})
final class BatchCommand implements Callable<Integer> {

    enum Format { parquet, jsonl }

    enum Task { generate, embed }

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", converter = ModelDirConverter.class,
            description = "Model folder (config.json and safetensors weights), readable from every executor.")
    Path model;

    @Option(names = "--input", required = true, paramLabel = "FILE",
            description = "Input rows: JSON lines, or Parquet (a .parquet file or folder, or --input-format).")
    String input;

    @Option(names = "--input-format", paramLabel = "parquet|jsonl",
            description = "Input format (default: parquet for a name ending in .parquet, else jsonl).")
    Format inputFormat;

    @Option(names = "--output", required = true, paramLabel = "DIR", description = "Output folder (Spark part files).")
    String output;

    @Option(names = "--output-format", paramLabel = "parquet|jsonl", defaultValue = "jsonl",
            description = "Output format (default ${DEFAULT-VALUE}).")
    Format outputFormat;

    @Option(names = "--overwrite", description = "Replace the output folder if it is a previous batch output (Ferry "
            + "marks its outputs; any other folder is never replaced).")
    boolean overwrite;

    @Option(names = "--task", paramLabel = "generate|embed", defaultValue = "generate",
            description = "generate (default): \"new_tokens\" per row; embed: \"embedding\", the mean of the "
                    + "model's final hidden states over the row's tokens.")
    Task task;

    @Option(names = "--batch-size", paramLabel = "N", defaultValue = "8",
            description = "Rows per forward batch (default ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--partitions", paramLabel = "N",
            description = "Repartition the input into N tasks (default: as Spark reads it).")
    Integer partitions;

    @Option(names = "--master", paramLabel = "URL",
            description = "Spark master (default: the one spark-submit set, else local[*]).")
    String master;

    @Option(names = "--conf", paramLabel = "KEY=VALUE", description = "A Spark setting, repeatable "
            + "(e.g. spark.task.maxFailures=4, spark.executor.resource.gpu.amount=1).")
    List<String> conf = new ArrayList<>();

    @Option(names = "--fail-fast", description = "A row that cannot run fails the job instead of getting an error.")
    boolean failFast;

    @Option(names = "--device-map", paramLabel = "FILE.json|auto", defaultValue = "auto",
            converter = DeviceMapArg.Converter.class,
            description = "A device map for every executor, or 'auto' (default): each executor's GPU, else its CPU, "
                    + "else planned under --max-memory.")
    DeviceMapArg deviceMap;

    @Option(names = "--max-memory", paramLabel = "DEV=SIZE,...", converter = MaxMemoryArg.Converter.class,
            description = "Per-executor budgets for auto, e.g. 0=20GiB,cpu=60GiB (0 is the executor's GPU).")
    MaxMemoryArg maxMemory;

    @Option(names = {"--offload-dir", "--offload-folder"}, paramLabel = "DIR",
            description = "Offload folder for disk-offloaded weights (local to each executor).")
    String offloadDir;

    @Option(names = "--prefetch", paramLabel = "N", defaultValue = "1",
            description = "Offloaded blocks read ahead (default ${DEFAULT-VALUE}).")
    int prefetch;

    @Mixin
    PreloadOption preload;

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "8",
            description = "Tokens to generate per row at most (default ${DEFAULT-VALUE}; capped per row by the "
                    + "model's positions).")
    int maxNewTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0", description = "Sampling temperature (0 = greedy).")
    double temperature;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "0", description = "Top-k (0 = off).")
    int topK;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1", description = "Top-p (1 = off).")
    double topP;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Sampling seed, the same for every row.")
    long seed;

    @Option(names = "--fail-once-partition", hidden = true, defaultValue = "-1",
            description = "Testing: the first attempt of this partition's task fails after its first batch.")
    int failOncePartition;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (batchSize < 1) {
            throw new UsageException("--batch-size: must be >= 1, got " + batchSize);
        }
        if (partitions != null && partitions < 1) {
            throw new UsageException("--partitions: must be >= 1, got " + partitions);
        }
        // before anything runs: Spark's overwrite deletes the output folder first
        BatchOutput.check(output, input, model, Path.of("").toAbsolutePath(), overwrite);
        ModelSpec modelSpec;
        GenerationSpec generation;
        try {
            // the classes resolved here, from config.json alone, so an unknown one is warned about once, not per executor
            List<String> classes;
            try (DjlBackend djl = new DjlBackend()) {
                classes = List.copyOf(preload.classes(ModelTrees.causalLmOnMeta(model, djl), err));
            }
            modelSpec = new ModelSpec(model.toAbsolutePath().toString(), deviceMap.isAuto() ? null
                    : deviceMap.map().toJson(), maxMemory == null ? null : budgets(maxMemory.budgets()), classes,
                    offloadDir, prefetch);
            generation = new GenerationSpec(maxNewTokens, temperature, topK, topP, seed, null);
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage(), e);
        }
        Format in = inputFormat != null ? inputFormat : input.endsWith(".parquet") ? Format.parquet : Format.jsonl;
        if (!input.contains("://") && !Files.exists(Path.of(input))) {
            throw new UsageException("--input: no such file: " + input);
        }
        if (!input.contains("://") && !Files.isDirectory(Path.of(input))
                && dev.ferry.core.io.RegularFiles.problem(Path.of(input)) != null) {
            throw new UsageException("--input: " + input + " " + dev.ferry.core.io.RegularFiles.problem(Path.of(input)));
        }
        boolean existed = SparkSession.getActiveSession().isDefined();
        SparkSession spark = session();
        AtomicInteger failedTasks = new AtomicInteger();
        SparkListener listener = new SparkListener() {
            @Override
            public void onTaskEnd(SparkListenerTaskEnd end) {
                if (!end.taskInfo().successful()) {
                    failedTasks.incrementAndGet();
                }
            }
        };
        spark.sparkContext().addSparkListener(listener);
        try {
            long start = System.nanoTime();
            Dataset<Row> rows = in == Format.parquet ? spark.read().parquet(input) : spark.read().json(input);
            List<String> columns = Arrays.asList(rows.columns());
            String inputCol = columns.contains("input_ids") ? "input_ids" : columns.contains("prompt") ? "prompt" : null;
            if (inputCol == null) {
                throw new UsageException("--input " + input + ": rows need \"input_ids\" or \"prompt\"; found "
                        + columns);
            }
            if (inputCol.equals("input_ids")) {
                requireIdArrays(rows, columns.contains("id"));
            }
            if (partitions != null) {
                rows = rows.repartition(partitions);
            }
            FerryGenerator generator = new FerryGenerator(modelSpec, generation).setInputCol(inputCol)
                    .setBatchSize(batchSize).setFailFast(failFast).setFailOncePartition(failOncePartition)
                    .setTask(task == Task.embed ? FerryGenerator.Task.EMBED : FerryGenerator.Task.GENERATE);
            Dataset<Row> result;
            try {
                result = generator.transform(rows);
            } catch (IllegalArgumentException e) {
                throw new UsageException("--input " + input + ": " + e.getMessage(), e);
            }
            List<Column> keep = new ArrayList<>();
            if (columns.contains("id")) {
                keep.add(functions.col("id"));
            }
            keep.add(functions.col(task == Task.embed ? "embedding" : "new_tokens"));
            if (inputCol.equals("prompt") && task == Task.generate) {
                keep.add(functions.col("text"));
            }
            keep.add(functions.col("error"));
            var writer = result.select(keep.toArray(Column[]::new)).write()
                    .mode(overwrite ? SaveMode.Overwrite : SaveMode.ErrorIfExists);
            if (outputFormat == Format.parquet) {
                writer.parquet(output);
            } else {
                writer.option("ignoreNullFields", "false").json(output);
            }
            BatchOutput.mark(output);
            double seconds = (System.nanoTime() - start) / 1e9;
            Dataset<Row> written = outputFormat == Format.parquet ? spark.read().parquet(output)
                    : spark.read().json(output);
            long count = written.count();
            long errors = written.filter(functions.col("error").isNotNull()).count();
            out.printf("%d rows (%d with an error) in %.1f s, master %s, batch size %d: %s (%s)%n", count, errors,
                    seconds, spark.sparkContext().master(), batchSize, output, outputFormat);
            awaitListeners(spark);
            if (failedTasks.get() > 0) {
                out.printf("%d task attempt(s) failed and were retried%n", failedTasks.get());
            }
            return 0;
        } finally {
            spark.sparkContext().removeSparkListener(listener);
            if (!existed) {
                spark.stop();
            }
            err.flush();
        }
    }

    /**
     * Waits (10 s at most) until Spark's listeners have been handed every event posted so far. Events reach listeners
     * asynchronously, each waiting behind the listeners before it in its queue, so the failed attempts of a job that
     * has returned may not have been counted yet (a lost executor's attempts, behind a slow listener). {@code listenerBus()} is
     * Spark-internal (Scala {@code private[spark]}, public in the bytecode); a Spark without it, or listeners still
     * busy after 10 s, leave the count as seen.
     */
    private static void awaitListeners(SparkSession spark) {
        try {
            spark.sparkContext().listenerBus().waitUntilEmpty(10_000);
        } catch (TimeoutException | LinkageError e) {
            // the count printed is what the listener saw
        }
    }

    /**
     * Rows whose {@code input_ids} is a string are refused, naming the first (a JSON reader types the whole column as
     * string then, and tokenising ids as text would answer a question nobody asked).
     */
    private void requireIdArrays(Dataset<Row> rows, boolean hasId) {
        if (!rows.schema().apply("input_ids").dataType().equals(org.apache.spark.sql.types.DataTypes.StringType)) {
            return;
        }
        Column ids = functions.col("input_ids");
        // values that were arrays in the file come back as their JSON text, "[1, 2]"; anything else was a string
        List<Row> bad = rows.filter(ids.isNotNull().and(functions.not(ids.rlike("^\\s*\\[[-0-9,\\s]*\\]\\s*$"))))
                .limit(1).collectAsList();
        String which = "a row";
        String value = "";
        if (!bad.isEmpty()) {
            Row r = bad.get(0);
            which = hasId ? "row with id " + r.get(r.fieldIndex("id")) : "a row";
            String v = r.getString(r.fieldIndex("input_ids"));
            value = " \"" + (v.length() > 40 ? v.substring(0, 40) + "..." : v) + "\"";
        }
        throw new UsageException("--input " + input + ": " + which + " has input_ids as a string" + value
                + "; input_ids must be an array of token ids (text goes in a \"prompt\" field)");
    }

    private SparkSession session() {
        // Spark logs through the CLI's slf4j-simple: its INFO lines would bury the summary
        for (String quiet : List.of("org.apache.spark", "org.apache.hadoop", "org.sparkproject", "io.netty",
                "org.apache.parquet")) {
            System.getProperties().putIfAbsent("org.slf4j.simpleLogger.log." + quiet, "warn");
        }
        // a failed task is logged by five Spark loggers with its whole trace (80 to 200 lines) before Ferry's one line;
        // Ferry reports the cause itself (and retried attempts by count), so they speak only at debug level
        String level = System.getProperty("org.slf4j.simpleLogger.defaultLogLevel", "info");
        if (!level.equalsIgnoreCase("debug") && !level.equalsIgnoreCase("trace")) {
            for (String loud : List.of("org.apache.spark.executor.Executor", "org.apache.spark.scheduler.TaskSetManager",
                    "org.apache.spark.util.Utils", "org.apache.spark.sql.execution.datasources.FileFormatWriter",
                    "org.apache.spark.scheduler.TaskSchedulerImpl")) {
                System.getProperties().putIfAbsent("org.slf4j.simpleLogger.log." + loud, "off");
            }
        }
        String url = master != null ? master : System.getProperty("spark.master", "local[*]");
        SparkSession.Builder b = SparkSession.builder().appName("ferry batch " + model.getFileName()).master(url);
        if (url.startsWith("local")) {
            b.config("spark.ui.enabled", "false");
        }
        for (String kv : conf) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new UsageException("--conf: '" + kv + "' is not KEY=VALUE");
            }
            b.config(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return b.getOrCreate();
    }

    /** Budgets back in the {@code gpu0=BYTES,cpu=BYTES} form the executors parse. */
    private static String budgets(Map<Device, Long> budgets) {
        return budgets.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(","));
    }
}
