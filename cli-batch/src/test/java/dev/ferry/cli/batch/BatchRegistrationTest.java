package dev.ferry.cli.batch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.Cli;
import org.junit.jupiter.api.Test;

/** With ferry-cli-batch and Spark on the class path, {@code batch} is the real command. */
class BatchRegistrationTest {

    @Test
    void batchIsRegisteredWhenSparkIsPresent() {
        Cli r = Cli.run("batch", "--help");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).startsWith("Usage: ferry batch").contains("--input", "--output", "--master");
        assertThat(new BatchCommandPlugin().missing()).isEmpty();
    }
}
