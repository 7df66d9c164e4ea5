package dev.ferry.examples;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.examples.demo.EmbeddedModel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The developer examples run on the model shipped in the jar and generate its golden tokens. */
class ExamplesTest {

    /** {@code greedy_new_tokens} of the tiny-llama fixture, which the shipped model copies. */
    static final long[] GOLDEN = {4, 4, 4, 6, 248, 111, 254, 87};

    @TempDir
    Path tmp;

    private final ByteArrayOutputStream captured = new ByteArrayOutputStream();
    private PrintStream original;

    @BeforeEach
    void capture() {
        original = System.out;
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restore() {
        System.setOut(original);
    }

    private String printed() {
        return captured.toString(StandardCharsets.UTF_8);
    }

    private Path model() throws java.io.IOException {
        EmbeddedModel.extractTo(tmp);
        return tmp;
    }

    @Test
    void chatWithLangChain4jRepliesWholeAndStreamedTheSame() throws Exception {
        Path dir = model();
        java.nio.file.Files.copy(dev.ferry.core.testing.Fixtures.model("tiny-qwen3").resolve("chat_template.jinja"),
                dir.resolve("chat_template.jinja"));
        String reply = ChatWithLangChain4j.run(dir, "Hi");
        assertThat(printed()).contains("reply: " + reply + " (").contains("streamed: " + reply + "\n");
    }

    @Test
    void loadAndDispatchPlansUnderTheBudgetAndGeneratesTheGoldenTokens() throws Exception {
        assertThat(LoadAndDispatch.run(model())).containsExactly(GOLDEN);
        assertThat(printed()).contains("model.layers.3=disk");
    }

    @Test
    void customDeviceMapLeavesTwoLayersOnDiskAndGeneratesTheGoldenTokens() throws Exception {
        assertThat(CustomDeviceMap.run(model())).containsExactly(GOLDEN);
        assertThat(printed()).contains("offloaded, streamed per forward disk 289.25 KiB",
                "      3                           LlamaDecoderLayer     cpu     disk     yes     in device map");
    }

    @Test
    void customPreloadListCutsHooksFromFiftyThreeToNine() throws Exception {
        assertThat(CustomPreloadList.run(model())).containsExactly(GOLDEN);
        assertThat(printed()).contains("without preload classes: 53 hooks",
                "with [LlamaDecoderLayer]: 9 hooks on [, model.embed_tokens, model.layers.0, model.layers.1, "
                        + "model.layers.2, model.layers.3, model.norm, model.rotary_emb, lm_head]",
                "below preload class LlamaDecoderLayer");
    }

    @Test
    void batchWithSparkGivesTheGoldenRowItsTokensAndTheBadRowAnError() throws Exception {
        org.apache.spark.sql.SparkSession spark = org.apache.spark.sql.SparkSession.builder().master("local[2]")
                .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate();
        try {
            java.util.Map<Long, Object> rows = BatchWithSpark.run(spark, model());

            assertThat(rows).hasSize(4);
            assertThat((long[]) rows.get(0L)).containsExactly(GOLDEN);
            assertThat((String) rows.get(2L)).contains("9000");
        } finally {
            spark.stop();
            dev.ferry.spark.ExecutorModels.closeAll(); // the model in the temporary folder, not kept till JVM exit
        }
    }

    @Test
    void mainRunsOnTheShippedModel() {
        CustomDeviceMap.main(new String[0]);
        assertThat(printed()).contains("new tokens: [4, 4, 4, 6, 248, 111, 254, 87]");
    }
}
