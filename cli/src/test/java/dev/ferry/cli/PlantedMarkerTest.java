package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry generate --offload-dir} on both backends: a marker edited to claim a file outside the folder makes the
 * folder refused (exit 2) and the file survives; before the edit, a second run reuses the folder.
 */
class PlantedMarkerTest {

    @TempDir
    Path tmp;

    private Cli generate(String backend, Path offload) {
        return Cli.run("generate", "--backend", backend, "--model", Cli.model("tiny-llama"), "--input-ids",
                Cli.goldenPrompt("tiny-llama"), "--max-memory", "cpu=300KiB", "--offload-dir", offload.toString(),
                "--format", "json");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pytorch", "onnx"})
    void aMarkerClaimingAFileOutsideTheFolderIsRefusedAndTheFileSurvives(String backend) throws IOException {
        Path offload = tmp.resolve("offload");
        Path canary = Files.writeString(tmp.resolve("canary.txt"), "precious");
        Cli first = generate(backend, offload);
        assertThat(first.exitCode()).as(first.toString()).isZero();
        Cli second = generate(backend, offload);
        assertThat(second.exitCode()).as(second.toString()).isZero();
        assertThat(second.err()).contains("offload: reusing " + offload);

        // an unfinished write (so the next run rewrites, deleting what the marker claims) claiming ../canary.txt
        Path markerFile = offload.resolve("ferry-offload.json");
        ObjectMapper json = new ObjectMapper();
        ObjectNode marker = (ObjectNode) json.readTree(markerFile.toFile());
        marker.put("state", "writing");
        marker.withArray("claimed").add("../canary.txt");
        Files.writeString(markerFile, json.writeValueAsString(marker));

        Cli r = generate(backend, offload);

        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("--offload-dir").contains("'../canary.txt'").contains("not a plain file name");
        assertThat(canary).hasContent("precious");
    }
}
