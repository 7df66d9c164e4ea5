package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry generate --offload-dir}: whose folders it writes, and several processes on one folder. */
class OffloadDirTest {

    private static final String CPU_DISK_MAP = """
            {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "cpu",
             "model.layers.2": "disk", "model.layers.3": "disk", "model.norm": "disk",
             "model.rotary_emb": "cpu", "lm_head": "disk"}""";

    @TempDir
    Path tmp;

    private String[] args(Path offload, String... more) throws IOException {
        Path map = tmp.resolve("map.json");
        if (!Files.exists(map)) {
            Files.writeString(map, CPU_DISK_MAP);
        }
        List<String> a = new ArrayList<>(List.of("generate", "--model", Path.of(Cli.model("tiny-llama")).toAbsolutePath()
                .toString(), "--input-ids", Cli.goldenPrompt("tiny-llama"), "--max-new-tokens", "8", "--format", "json",
                "--device-map", map.toString(), "--offload-dir", offload.toString()));
        a.addAll(Arrays.asList(more));
        return a.toArray(String[]::new);
    }

    private Path accelerateFolder() throws IOException {
        Path offload = Files.createDirectory(tmp.resolve("offload"));
        Files.writeString(offload.resolve("index.json"),
                "{\"model.layers.3.mlp.up_proj.weight\": {\"dtype\": \"float32\", \"shape\": [2]}}");
        Files.write(offload.resolve("model.layers.3.mlp.up_proj.weight.dat"), new byte[8]);
        Files.writeString(offload.resolve("README"), "made by accelerate");
        return offload;
    }

    @Test
    void aForeignOffloadDirIsUsageErrorAndLeftByteIdentical() throws IOException {
        Path offload = accelerateFolder();
        String[] args = args(offload);
        Map<String, String> before = snapshot(tmp);

        Cli r = Cli.run(args);

        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("--offload-dir: offload folder " + offload.toRealPath())
                .contains("index.json").contains("--overwrite-offload-dir");
        assertThat(snapshot(tmp)).isEqualTo(before);
    }

    @Test
    void overwriteOffloadDirRewritesAForeignFolderAndGivesTheGoldenTokens() throws IOException {
        Path offload = accelerateFolder();
        byte[] readme = Files.readAllBytes(offload.resolve("README"));

        Cli r = Cli.run(args(offload, "--overwrite-offload-dir"));

        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(Cli.longs(r.json().get("new_tokens"))).containsExactly(Cli.goldenTokens("tiny-llama"));
        assertThat(offload.resolve("ferry-offload.json")).isRegularFile();
        assertThat(Files.readAllBytes(offload.resolve("README"))).isEqualTo(readme);
        // now Ferry's: a later run without the flag reuses it
        Cli again = Cli.run(args(offload));
        assertThat(again.exitCode()).as(again.toString()).isZero();
        assertThat(again.err()).contains("offload: reusing");
    }

    @Test
    @Timeout(300)
    void fourProcessesOnOneFreshOffloadDirAllGiveTheGoldenTokens() throws Exception {
        Path offload = tmp.resolve("shared-offload");
        Map<String, String> checkpointBefore = snapshot(Path.of(Cli.model("tiny-llama")));
        List<Process> processes = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-cp", System.getProperty("java.class.path"), "-Dai.djl.offline=true", "-Xmx512m",
                    FerryCli.class.getName()));
            cmd.addAll(Arrays.asList(args(offload)));
            processes.add(new ProcessBuilder(cmd).redirectError(tmp.resolve("err" + i + ".txt").toFile()).start());
        }
        List<String> outs = new ArrayList<>();
        for (int i = 0; i < processes.size(); i++) {
            Process p = processes.get(i);
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(240, TimeUnit.SECONDS)).isTrue();
            String err = Files.readString(tmp.resolve("err" + i + ".txt"));
            assertThat(p.exitValue()).as(out + err).isZero();
            outs.add(err);
            assertThat(Cli.longs(new com.fasterxml.jackson.databind.ObjectMapper().readTree(out).get("new_tokens")))
                    .containsExactly(Cli.goldenTokens("tiny-llama"));
        }
        assertThat(outs.stream().filter(e -> e.contains("offload: wrote "))).hasSize(1);
        assertThat(outs.stream().filter(e -> e.contains("offload: reusing "))).hasSize(3);
        assertThat(snapshot(Path.of(Cli.model("tiny-llama")))).isEqualTo(checkpointBefore);
    }

    /** Every path under {@code root} (links not followed) with its size, content hash and modification time. */
    static Map<String, String> snapshot(Path root) {
        Map<String, String> out = new TreeMap<>();
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                    out.put(root.relativize(f).toString(), a.isSymbolicLink() ? "link->" + Files.readSymbolicLink(f)
                            : a.size() + " " + Arrays.hashCode(Files.readAllBytes(f)) + " " + a.lastModifiedTime());
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    @Test
    void anOffloadDirThatCannotBeCreatedFailsWithTheReason() throws IOException {
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        Cli r = Cli.run(args(file.resolve("offload")));
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(FerryCli.FAILURE);
        assertThat(r.err()).contains("ferry generate: error: cannot create offload folder "
                + file.resolve("offload") + ": Not a directory");
    }
}
