package dev.ferry.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@link FerryGenerator} on a local Spark: rows in batches give their tokens alone; bad rows get an error. */
class FerryGeneratorTest {

    static final StructType SCHEMA = new StructType().add("id", DataTypes.LongType)
            .add("input_ids", DataTypes.createArrayType(DataTypes.LongType));
    static final GenerationSpec GREEDY = GenerationSpec.greedy(6).withEos(List.of());

    static DjlBackend backend;
    static Generator alone;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
        CausalLM model = ModelFamilies.build(Fixtures.model("tiny-llama"), backend);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model("tiny-llama"))) {
            ModelFamilies.load(model, ckpt, backend, Device.cpu());
        }
        alone = new Generator(model, backend, Device.cpu());
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static ModelSpec llama() {
        return ModelSpec.of(Fixtures.model("tiny-llama").toString());
    }

    static Dataset<Row> frame(List<long[]> prompts, int partitions) {
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            long[] ids = prompts.get(i);
            rows.add(RowFactory.create((long) i, ids == null ? null : FerryGenerator.scalaSeq(ids)));
        }
        return TestSpark.session().createDataFrame(rows, SCHEMA).repartition(partitions);
    }

    static List<long[]> randomPrompts(int count, long seed) {
        Random random = new Random(seed);
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(random.longs(1 + random.nextInt(20), 0, 256).toArray());
        }
        return out;
    }

    static Map<Long, Row> byId(Dataset<Row> out) {
        Map<Long, Row> m = new HashMap<>();
        for (Row r : out.collectAsList()) {
            m.put(r.getLong(r.fieldIndex("id")), r);
        }
        return m;
    }

    static long[] tokens(Row r) {
        return r.<Long>getList(r.fieldIndex("new_tokens")).stream().mapToLong(Long::longValue).toArray();
    }

    @Test
    void rowsRunInBatchesGetTheTokensEachGetsAlone() {
        List<long[]> prompts = randomPrompts(20, 3);

        Map<Long, Row> out = byId(new FerryGenerator(llama(), GREEDY).setBatchSize(4).transform(frame(prompts, 3)));

        assertThat(out).hasSize(20);
        for (int i = 0; i < prompts.size(); i++) {
            Row r = out.get((long) i);
            assertThat(r.isNullAt(r.fieldIndex("error"))).as("row %d: %s", i, r).isTrue();
            assertThat(tokens(r)).as("row %d", i).containsExactly(alone.generate(prompts.get(i), GREEDY.config()));
        }
    }

    @Test
    void aRowThatCannotRunGetsAnErrorAndTheOthersRun() {
        List<long[]> prompts = new ArrayList<>(randomPrompts(5, 4));
        prompts.add(2, new long[] {1, 999});
        prompts.add(4, new long[0]);
        prompts.add(5, new long[200]);

        Map<Long, Row> out = byId(new FerryGenerator(llama(), GREEDY).setBatchSize(3).transform(frame(prompts, 1)));

        assertThat(out.get(2L).getString(out.get(2L).fieldIndex("error"))).contains("999").contains("256");
        assertThat(out.get(4L).getString(out.get(4L).fieldIndex("error"))).contains("empty");
        assertThat(out.get(5L).getString(out.get(5L).fieldIndex("error"))).contains("200").contains("128");
        for (long bad : List.of(2L, 4L, 5L)) {
            assertThat(out.get(bad).isNullAt(out.get(bad).fieldIndex("new_tokens"))).isTrue();
        }
        for (long good : List.of(0L, 1L, 3L, 6L, 7L)) {
            assertThat(tokens(out.get(good))).containsExactly(alone.generate(prompts.get((int) good), GREEDY.config()));
        }
    }

    @Test
    void failFastFailsTheJobNamingTheBadId() {
        List<long[]> prompts = List.of(new long[] {1, 2}, new long[] {1, 999});

        Dataset<Row> out = new FerryGenerator(llama(), GREEDY).setFailFast(true).transform(frame(prompts, 1));

        assertThatThrownBy(out::collectAsList).hasStackTraceContaining("999");
    }

    @Test
    void anExecutorLoadsTheModelOnceForAllItsTasks() {
        ModelSpec fresh = llama().withPrefetch(3); // a spec no other test uses: a model of its own
        int before = ExecutorModels.loads();

        long rows = new FerryGenerator(fresh, GREEDY).setBatchSize(2).transform(frame(randomPrompts(12, 5), 6))
                .count();

        assertThat(rows).isEqualTo(12);
        assertThat(ExecutorModels.loads() - before).isEqualTo(1);
    }

    @Test
    void aMissingInputColumnIsNamedOnTheDriver() {
        assertThatThrownBy(() -> new FerryGenerator(llama(), GREEDY).setInputCol("prompt_ids")
                .transform(frame(randomPrompts(1, 6), 1)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("prompt_ids");
    }

    @Test
    void theEmbedTaskGivesEachRowTheEmbeddingItHasAlone() {
        List<long[]> prompts = randomPrompts(6, 7);

        Map<Long, Row> out = byId(new FerryGenerator(llama(), GREEDY).setTask(FerryGenerator.Task.EMBED)
                .setBatchSize(3).transform(frame(prompts, 2)));

        for (int i = 0; i < prompts.size(); i++) {
            Row r = out.get((long) i);
            List<Float> got = r.getList(r.fieldIndex("embedding"));
            float[] expected = alone.embed(new long[][] {prompts.get(i)})[0];
            assertThat(got).hasSize(64);
            for (int k = 0; k < expected.length; k++) {
                assertThat(got.get(k)).isCloseTo(expected[k], org.assertj.core.data.Offset.offset(1e-5f));
            }
        }
    }

    /** A word-level tokenizer.json beside a copy of tiny-llama: word {@code wN} is id N. */
    static java.nio.file.Path modelWithTokenizer(java.nio.file.Path dir) throws java.io.IOException {
        try (var files = java.nio.file.Files.list(Fixtures.model("tiny-llama"))) {
            for (java.nio.file.Path f : files.toList()) {
                java.nio.file.Files.copy(f, dir.resolve(f.getFileName().toString()));
            }
        }
        StringBuilder vocab = new StringBuilder("\"<unk>\": 0");
        for (int id = 1; id < 256; id++) {
            vocab.append(", \"w").append(id).append("\": ").append(id);
        }
        java.nio.file.Files.writeString(dir.resolve("tokenizer.json"), "{\"version\": \"1.0\", \"truncation\": null, "
                + "\"padding\": null, \"added_tokens\": [], \"normalizer\": null, "
                + "\"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"}, \"post_processor\": null, \"decoder\": null, "
                + "\"model\": {\"type\": \"WordLevel\", \"vocab\": {" + vocab + "}, \"unk_token\": \"<unk>\"}}");
        return dir;
    }

    @Test
    void aTextPromptColumnGoesThroughTheFoldersTokenizerAndComesBackAsText(@org.junit.jupiter.api.io.TempDir
                                                                           java.nio.file.Path dir) throws Exception {
        ModelSpec spec = ModelSpec.of(modelWithTokenizer(dir).toString());
        Dataset<Row> prompts = TestSpark.session().createDataFrame(
                List.of(RowFactory.create(0L, "w1 w17 w42 w99 w3 w250 w7 w128"), RowFactory.create(1L, "w5 w6")),
                new StructType().add("id", DataTypes.LongType).add("prompt", DataTypes.StringType));

        Map<Long, Row> out = byId(new FerryGenerator(spec, GenerationSpec.greedy(8).withEos(List.of()))
                .setInputCol("prompt").transform(prompts));

        Row golden = out.get(0L);
        assertThat(golden.getString(golden.fieldIndex("text"))).isEqualTo("w4 w4 w4 w6 w248 w111 w254 w87");
        assertThat(tokens(golden)).containsExactly(4, 4, 4, 6, 248, 111, 254, 87);
        ExecutorModels.closeAll(); // the model in the temporary folder
    }
}
