package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/**
 * The lean {@code ferry}: this module's class path is the distribution's (core, both backends, the CPU libtorch, no
 * Spark, no ferry-cli-batch), and every command but {@code batch} runs on it.
 */
class LeanDistributionTest {

    @Test
    void sparkIsNotOnTheClassPathOfTheCli() {
        assertThatThrownBy(() -> Class.forName("org.apache.spark.sql.SparkSession"))
                .isInstanceOf(ClassNotFoundException.class);
        assertThatThrownBy(() -> Class.forName("dev.ferry.spark.FerryGenerator"))
                .isInstanceOf(ClassNotFoundException.class);
    }

    @Test
    void generateRunsWithoutSparkAndGivesTheGoldenTokens() {
        Cli r = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--input-ids", Cli.goldenPrompt("tiny-llama"),
                "--max-new-tokens", "8", "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(Cli.longs(r.json().get("new_tokens"))).containsExactly(Cli.goldenTokens("tiny-llama"));
    }

    @Test
    void batchWithoutSparkSaysWhatToAddAndExitsOne() {
        Cli r = Cli.run("batch", "--model", Cli.model("tiny-llama"), "--input", "rows.jsonl", "--output", "out");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(1);
        assertThat(r.err()).startsWith("ferry batch: ")
                .contains("Apache Spark", "ferry-batch.jar", "dev.ferry:ferry-cli-batch:",
                        "org.apache.spark:spark-sql_2.13:4.");
        assertThat(r.err()).doesNotContain("NoClassDefFoundError", "Exception");
    }

    @Test
    void theUsageListsBatchAndWhereItComesFrom() {
        Cli r = Cli.run("--help");
        assertThat(r.exitCode()).isZero();
        assertThat(r.out()).contains("batch", "Not in this distribution");
    }

    @Test
    void noArgumentsPrintTheUsage() {
        Cli r = Cli.run();
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).startsWith("Usage: ferry").contains("generate", "embed", "demo", "ferry demo");
    }
}
