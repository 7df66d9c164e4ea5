package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assumptions.assumeThat;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A FIFO given where the CLI expects a file is bad usage naming it (exit 2), never a read that waits forever. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class NonRegularFilesTest {

    @TempDir
    Path tmp;

    private Path fifo(String name) throws IOException, InterruptedException {
        Path at = tmp.resolve(name);
        Process p = new ProcessBuilder("mkfifo", at.toString()).redirectErrorStream(true).start();
        assumeThat(p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0).as("mkfifo works here").isTrue();
        return at;
    }

    @Test
    void aFifoAsDeviceMapIsBadUsageNamingIt() throws Exception {
        Path map = fifo("map.json");

        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", map.toString());

        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("--device-map").contains(map.toString()).contains("not a regular file");
    }
}
