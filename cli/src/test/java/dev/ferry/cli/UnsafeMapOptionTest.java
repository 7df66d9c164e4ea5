package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.weights.FileAccess;
import org.junit.jupiter.api.Test;

/** The zero-copy path stays available behind an option that says what it risks, for this run only. */
class UnsafeMapOptionTest {

    @Test
    void mappedInPlaceGivesTheGoldenTokensAndTheOptionEndsWithTheRun() {
        Cli r = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--input-ids", Cli.goldenPrompt("tiny-llama"),
                "--max-memory", "cpu=400KiB", "--unsafe-map-weights-in-place", "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(Cli.longs(r.json().get("new_tokens"))).containsExactly(Cli.goldenTokens("tiny-llama"));
        assertThat(r.json().get("device_map").toString()).contains("disk");
        assertThat(System.getProperty(FileAccess.PROPERTY)).isNull();
    }

    @Test
    void theHelpSaysWhatTheOptionRisks() {
        assertThat(Cli.run("generate", "--help").out()).contains("--unsafe-map-weights-in-place").contains("SIGBUS");
    }
}
