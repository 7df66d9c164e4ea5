package dev.ferry.examples;

import dev.ferry.examples.demo.EmbeddedModel;
import dev.ferry.spark.FerryGenerator;
import dev.ferry.spark.GenerationSpec;
import dev.ferry.spark.ModelSpec;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Generation over a Spark DataFrame of token ids with {@link FerryGenerator}: each executor JVM loads and dispatches
 * the model once (its GPU if Spark gave it one, else its CPU) and runs its rows in batches; a row that cannot run
 * (here an id outside the vocabulary) gets its reason in the {@code error} column and the job goes on.
 *
 * <p>Run (local mode, no cluster):
 * {@code java -cp "examples/target/ferry.jar:examples/target/lib/*" dev.ferry.examples.BatchWithSpark [MODEL_DIR]}
 * (with the {@code --add-opens} flags Spark needs on Java 17, or via {@code spark-submit --class}).
 */
public final class BatchWithSpark {

    private BatchWithSpark() {
    }

    /** Generates 8 tokens for each of four prompts, prints the rows, and returns the new tokens (or error) by id. */
    public static Map<Long, Object> run(SparkSession spark, Path modelDir) {
        StructType schema = new StructType().add("id", DataTypes.LongType)
                .add("input_ids", DataTypes.createArrayType(DataTypes.LongType));
        Dataset<Row> prompts = spark.createDataFrame(List.of(
                RowFactory.create(0L, FerryGenerator.scalaSeq(new long[] {1, 17, 42, 99, 3, 250, 7, 128})),
                RowFactory.create(1L, FerryGenerator.scalaSeq(new long[] {1, 17, 42})),
                RowFactory.create(2L, FerryGenerator.scalaSeq(new long[] {5, 9000})),
                RowFactory.create(3L, FerryGenerator.scalaSeq(new long[] {1, 2, 3, 4, 5, 6}))), schema);

        FerryGenerator generator = new FerryGenerator(ModelSpec.of(modelDir.toString()), GenerationSpec.greedy(8))
                .setInputCol("input_ids").setBatchSize(4);
        Dataset<Row> out = generator.transform(prompts);
        out.show(false);

        Map<Long, Object> byId = new TreeMap<>();
        for (Row r : out.collectAsList()) {
            byId.put(r.getLong(0), r.isNullAt(r.fieldIndex("error"))
                    ? r.<Long>getList(r.fieldIndex("new_tokens")).stream().mapToLong(Long::longValue).toArray()
                    : r.getString(r.fieldIndex("error")));
        }
        return byId;
    }

    public static void main(String[] args) {
        Path model = args.length > 0 ? Path.of(args[0]) : EmbeddedModel.extract();
        SparkSession spark = SparkSession.builder().appName("ferry BatchWithSpark")
                .master(System.getProperty("spark.master", "local[*]")).getOrCreate();
        try {
            run(spark, model);
        } finally {
            spark.stop();
        }
    }
}
