package dev.ferry.core.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assumptions.assumeThat;

import dev.ferry.core.config.ModelConfig;
import dev.ferry.core.module.ModuleTreeJson;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.SafetensorsFile;
import dev.ferry.core.weights.WeightsFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A FIFO where Ferry expects a file a user named is refused by name, never opened: opening it for reading would
 * block until a writer comes, which may be never. Each test fails by timeout, not by hanging the suite.
 */
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class RegularFilesTest {

    @TempDir
    Path dir;

    private Path fifo(String name) throws IOException, InterruptedException {
        Path at = dir.resolve(name);
        Process p = new ProcessBuilder("mkfifo", at.toString()).redirectErrorStream(true).start();
        assumeThat(p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0).as("mkfifo works here").isTrue();
        return at;
    }

    @Test
    void aFifoIsNamedAsNotARegularFile() throws Exception {
        assertThat(RegularFiles.problem(fifo("p"))).contains("not a regular file").contains("FIFO");
        assertThat(RegularFiles.problem(dir)).isEqualTo("is a folder");
        assertThat(RegularFiles.problem(dir.resolve("none"))).isEqualTo("does not exist");
        assertThat(RegularFiles.problem(Files.writeString(dir.resolve("f"), "x"))).isNull();
    }

    @Test
    void aFifoAsDeviceMapIsRefused() throws Exception {
        Path f = fifo("map.json");
        assertThatThrownBy(() -> DeviceMap.readJson(f)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(f.toString()).hasMessageContaining("not a regular file");
    }

    @Test
    void aFifoAsConfigJsonIsRefused() throws Exception {
        Path f = fifo("config.json");
        assertThatThrownBy(() -> ModelConfig.read(dir)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(f.toString()).hasMessageContaining("not a regular file");
    }

    @Test
    void aFifoAsModuleTreeIsRefused() throws Exception {
        Path f = fifo("module_tree.json");
        assertThatThrownBy(() -> ModuleTreeJson.read(f)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not a regular file");
    }

    @Test
    void aFifoAsSafetensorsFileIsRefused() throws Exception {
        Path f = fifo("model.safetensors");
        assertThatThrownBy(() -> SafetensorsFile.open(f)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("model.safetensors").hasMessageContaining("not a regular file");
    }

    @Test
    void aFifoAsShardIndexIsRefused() throws Exception {
        fifo("model.safetensors.index.json");
        assertThatThrownBy(() -> SafetensorsCheckpoint.open(dir)).hasMessageContaining("model.safetensors.index.json");
    }
}
