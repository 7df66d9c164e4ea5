package dev.ferry.cli.batch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assumptions.assumeThat;

import dev.ferry.cli.Cli;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A FIFO given as {@code ferry batch}'s input is bad usage naming it (exit 2), never a read that waits forever. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BatchNonRegularInputTest {

    @TempDir
    Path tmp;

    private Path fifo(String name) throws IOException, InterruptedException {
        Path at = tmp.resolve(name);
        Process p = new ProcessBuilder("mkfifo", at.toString()).redirectErrorStream(true).start();
        assumeThat(p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0).as("mkfifo works here").isTrue();
        return at;
    }

    @Test
    void aFifoAsBatchInputIsBadUsageNamingIt() throws Exception {
        Path in = fifo("in.jsonl");

        Cli r = Cli.run("batch", "--model", Cli.model("tiny-llama"), "--input", in.toString(), "--output",
                tmp.resolve("out").toString());

        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("--input").contains(in.toString()).contains("not a regular file");
    }
}
