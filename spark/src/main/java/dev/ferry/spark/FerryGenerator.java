package dev.ferry.spark;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.ferry.core.config.TokenLimits;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import java.io.Serializable;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Generation over a DataFrame, one dispatched model per executor JVM: {@link #transform} keeps every input column
 * and adds the new tokens ({@code array<bigint>}) and an error ({@code string}, null when the row ran), plus the
 * decoded text when the input is text. The input column holds token ids ({@code array<int>} or
 * {@code array<bigint>}), or prompts ({@code string}) when the model folder has a {@code tokenizer.json}.
 *
 * <pre>{@code
 * Dataset<Row> out = new FerryGenerator(ModelSpec.of("/models/llama"), GenerationSpec.greedy(32))
 *         .setInputCol("input_ids").setBatchSize(16).transform(df);
 * }</pre>
 *
 * <p>Each task takes its partition's rows in batches of {@link #setBatchSize} (left-padded, masked: a row gets the
 * tokens it gets alone). A row that cannot run (null or empty ids, an id outside the vocabulary, a prompt longer
 * than the model's positions, or a forward that throws on it) gets its reason in the error column and no tokens,
 * and the job goes on; with {@link #setFailFast} it fails the task instead, naming the row. The model is loaded by
 * the first task of each executor ({@link ExecutorModels}); the transformation is lazy, as any Spark one.
 * Output is deterministic per row (greedy, or sampled with the spec's seed per row), so a retried task writes the
 * same rows again and Spark's commit protocol keeps one copy.
 */
public final class FerryGenerator implements Serializable {

    /** What each row gets: new tokens, or a sentence embedding (mean of the final hidden states over its tokens). */
    public enum Task { GENERATE, EMBED }

    private final ModelSpec model;
    private final GenerationSpec generation;
    private String inputCol = "input_ids";
    private String outputCol = "new_tokens";
    private String errorCol = "error";
    private String textCol = "text";
    private String embeddingCol = "embedding";
    private Task task = Task.GENERATE;
    private int batchSize = 8;
    private boolean failFast;
    private int failOncePartition = -1;

    public FerryGenerator(ModelSpec model, GenerationSpec generation) {
        this.model = model;
        this.generation = generation;
    }

    /** The column of token ids or prompt text (default {@code input_ids}). */
    public FerryGenerator setInputCol(String name) {
        this.inputCol = name;
        return this;
    }

    /** The column of new token ids (default {@code new_tokens}). */
    public FerryGenerator setOutputCol(String name) {
        this.outputCol = name;
        return this;
    }

    /** The column of row errors (default {@code error}). */
    public FerryGenerator setErrorCol(String name) {
        this.errorCol = name;
        return this;
    }

    /** The column of decoded new text, added when the input is text (default {@code text}). */
    public FerryGenerator setTextCol(String name) {
        this.textCol = name;
        return this;
    }

    /**
     * {@link Task#EMBED}: each row gets an embedding ({@code array<float>}, in {@link #setEmbeddingCol}) instead of
     * new tokens; the generation spec is not used.
     */
    public FerryGenerator setTask(Task task) {
        this.task = task;
        return this;
    }

    /** The column of embeddings for {@link Task#EMBED} (default {@code embedding}). */
    public FerryGenerator setEmbeddingCol(String name) {
        this.embeddingCol = name;
        return this;
    }

    /** Rows per forward batch (default 8). */
    public FerryGenerator setBatchSize(int rows) {
        if (rows < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, got " + rows);
        }
        this.batchSize = rows;
        return this;
    }

    /** A row that cannot run fails its task (and, after Spark's retries, the job) instead of getting an error. */
    public FerryGenerator setFailFast(boolean failFast) {
        this.failFast = failFast;
        return this;
    }

    /**
     * For testing retries: the first attempt of the task of partition {@code partition} throws after its first
     * batch has been generated (so the task fails part way, with rows already handed on). -1 (default): never.
     */
    public FerryGenerator setFailOncePartition(int partition) {
        this.failOncePartition = partition;
        return this;
    }

    public int batchSize() {
        return batchSize;
    }

    /** The schema {@link #transform} gives {@code input}. */
    public StructType outputSchema(StructType input) {
        boolean text = inputIsText(input);
        if (task == Task.EMBED) {
            return input.add(embeddingCol, DataTypes.createArrayType(DataTypes.FloatType, false), true)
                    .add(errorCol, DataTypes.StringType, true);
        }
        StructType out = input.add(outputCol, DataTypes.createArrayType(DataTypes.LongType, false), true)
                .add(errorCol, DataTypes.StringType, true);
        return text ? out.add(textCol, DataTypes.StringType, true) : out;
    }

    /**
     * {@code input} with the generated columns added (lazy).
     *
     * @throws IllegalArgumentException when the input column is missing or of another type, or an output column
     *                                  already exists
     */
    public Dataset<Row> transform(Dataset<Row> input) {
        StructType schema = input.schema();
        StructType out = outputSchema(schema);
        for (String c : List.of(task == Task.EMBED ? embeddingCol : outputCol, errorCol)) {
            if (Arrays.asList(schema.fieldNames()).contains(c)) {
                throw new IllegalArgumentException("column '" + c + "' already exists in the input");
            }
        }
        return input.mapPartitions(new Partition(this, schema.fieldIndex(inputCol), inputIsText(schema),
                        task == Task.EMBED),
                Encoders.row(out));
    }

    private boolean inputIsText(StructType schema) {
        if (!Arrays.asList(schema.fieldNames()).contains(inputCol)) {
            throw new IllegalArgumentException("no column '" + inputCol + "' in the input; it has "
                    + Arrays.toString(schema.fieldNames()));
        }
        DataType t = schema.apply(inputCol).dataType();
        if (t.equals(DataTypes.StringType) && inputCol.equals("input_ids")) {
            // a JSON reader types the column string when any row holds a string there: never tokenise ids as text
            throw new IllegalArgumentException("column 'input_ids' holds strings (at least one row's input_ids is not "
                    + "an array); input_ids must be arrays of token ids; put prompt text in a 'prompt' column");
        }
        if (t.equals(DataTypes.StringType)) {
            return true;
        }
        if (t instanceof ArrayType a && (a.elementType().equals(DataTypes.LongType)
                || a.elementType().equals(DataTypes.IntegerType) || a.elementType().equals(DataTypes.ShortType))) {
            return false;
        }
        throw new IllegalArgumentException("column '" + inputCol + "' is " + t.simpleString()
                + "; expected token ids (array<int> or array<bigint>) or prompt text (string)");
    }

    /** One task's work: its partition's rows, batch by batch, lazily. */
    private static final class Partition implements MapPartitionsFunction<Row, Row> {

        private final FerryGenerator g;
        private final int column;
        private final boolean text;
        private final boolean embed;

        /**
         * @param text  the input is prompt text (tokenized here; generation also decodes the new tokens to text)
         * @param embed rows get embeddings, not new tokens
         */
        Partition(FerryGenerator g, int column, boolean text, boolean embed) {
            this.g = g;
            this.column = column;
            this.text = text;
            this.embed = embed;
        }

        @Override
        public Iterator<Row> call(Iterator<Row> rows) {
            if (!rows.hasNext()) {
                return rows;
            }
            LoadedModel loaded = ExecutorModels.get(g.model);
            if (text && loaded.tokenizer() == null) {
                throw new IllegalArgumentException("column '" + g.inputCol + "' holds text but " + g.model.modelDir()
                        + " has no tokenizer.json; give token ids");
            }
            TaskContext task = TaskContext.get();
            boolean failOnce = task != null && task.partitionId() == g.failOncePartition && task.attemptNumber() == 0;
            GenerationConfig config = embed ? null : g.generation.config();
            return new Iterator<>() {
                private final Deque<Row> ready = new ArrayDeque<>();
                private int batches;

                @Override
                public boolean hasNext() {
                    if (ready.isEmpty() && rows.hasNext()) {
                        if (failOnce && batches == 1) {
                            throw new IllegalStateException("failure injected into the first attempt of partition "
                                    + g.failOncePartition + " (setFailOncePartition)");
                        }
                        List<Row> batch = new ArrayList<>(g.batchSize);
                        while (batch.size() < g.batchSize && rows.hasNext()) {
                            batch.add(rows.next());
                        }
                        ready.addAll(run(loaded, config, batch));
                        batches++;
                    }
                    return !ready.isEmpty();
                }

                @Override
                public Row next() {
                    if (!hasNext()) {
                        throw new NoSuchElementException();
                    }
                    return ready.poll();
                }
            };
        }

        private List<Row> run(LoadedModel loaded, GenerationConfig config, List<Row> batch) {
            Generator gen = loaded.generator();
            HuggingFaceTokenizer tokenizer = loaded.tokenizer();
            TokenLimits limits = loaded.model().tokenLimits();
            int n = batch.size();
            long[][] ids = new long[n][];
            long[][] tokens = new long[n][];
            float[][] embeddings = new float[n][];
            String[] errors = new String[n];
            List<Integer> runnable = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                try {
                    ids[i] = text ? prompt(batch.get(i), tokenizer) : ids(batch.get(i));
                    limits.checkPrompt(ids[i]);
                    runnable.add(i);
                } catch (IllegalArgumentException e) {
                    errors[i] = e.getMessage();
                    if (g.failFast) {
                        String row = batch.get(i).toString();
                        throw new IllegalArgumentException("row " + (row.length() > 200 ? row.substring(0, 200) + "…" : row)
                                + ": " + e.getMessage(), e);
                    }
                }
            }
            long[][] prompts = runnable.stream().map(i -> ids[i]).toArray(long[][]::new);
            try {
                if (embed) {
                    float[][] out = gen.embed(prompts);
                    for (int k = 0; k < out.length; k++) {
                        embeddings[runnable.get(k)] = out[k];
                    }
                } else {
                    long[][] out = gen.generate(prompts, config);
                    for (int k = 0; k < out.length; k++) {
                        tokens[runnable.get(k)] = out[k];
                    }
                }
            } catch (RuntimeException e) {
                if (g.failFast) {
                    throw e;
                }
                for (int i : runnable) { // one row at a time, so only the rows that fail get an error
                    try {
                        if (embed) {
                            embeddings[i] = gen.embed(new long[][] {ids[i]})[0];
                        } else {
                            tokens[i] = gen.generate(ids[i], config);
                        }
                    } catch (RuntimeException rowError) {
                        errors[i] = rowError.getClass().getSimpleName() + ": " + rowError.getMessage();
                    }
                }
            }
            List<Row> result = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                Row in = batch.get(i);
                boolean decode = text && !embed;
                Object[] values = new Object[in.size() + (decode ? 3 : 2)];
                for (int c = 0; c < in.size(); c++) {
                    values[c] = in.get(c);
                }
                if (embed) {
                    values[in.size()] = embeddings[i] == null ? null : scalaSeq(embeddings[i]);
                } else {
                    values[in.size()] = tokens[i] == null ? null : scalaSeq(tokens[i]);
                }
                values[in.size() + 1] = errors[i];
                if (decode) {
                    values[in.size() + 2] = tokens[i] == null ? null : tokenizer.decode(tokens[i], true);
                }
                result.add(RowFactory.create(values));
            }
            return result;
        }

        private long[] ids(Row row) {
            if (row.isNullAt(column)) {
                throw new IllegalArgumentException("'" + g.inputCol + "' is null");
            }
            List<Object> list = row.getList(column);
            long[] out = new long[list.size()];
            for (int i = 0; i < out.length; i++) {
                Object v = list.get(i);
                if (v == null) {
                    throw new IllegalArgumentException("'" + g.inputCol + "' has a null at position " + i);
                }
                out[i] = ((Number) v).longValue();
            }
            return out;
        }

        private long[] prompt(Row row, HuggingFaceTokenizer tokenizer) {
            if (row.isNullAt(column)) {
                throw new IllegalArgumentException("'" + g.inputCol + "' is null");
            }
            return tokenizer.encode(row.getString(column)).getIds();
        }
    }

    /** {@code v} as a Scala sequence, what Spark's row encoder takes for an {@code array<bigint>} value. */
    public static scala.collection.immutable.Seq<Long> scalaSeq(long[] v) {
        List<Long> out = new ArrayList<>(v.length);
        for (long x : v) {
            out.add(x);
        }
        return scala.jdk.javaapi.CollectionConverters.asScala(out).toList();
    }

    /** {@code v} as a Scala sequence, for an {@code array<float>} value. */
    public static scala.collection.immutable.Seq<Float> scalaSeq(float[] v) {
        List<Float> out = new ArrayList<>(v.length);
        for (float x : v) {
            out.add(x);
        }
        return scala.jdk.javaapi.CollectionConverters.asScala(out).toList();
    }
}
