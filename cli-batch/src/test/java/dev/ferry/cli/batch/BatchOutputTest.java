package dev.ferry.cli.batch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.cli.Cli;
import dev.ferry.cli.UsageException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry batch --output} never eats an input: outputs at the input, above it, at the working directory or the
 * model folder are refused before Spark runs, and {@code --overwrite} replaces only a folder Ferry marked as its
 * batch output. The refusals through the command itself check that the files survive.
 */
class BatchOutputTest {

    @TempDir
    Path tmp;

    private Path data;
    private Path input;
    private Path canary;
    private Path model;
    private Path cwd;

    @BeforeEach
    void setUp() throws IOException {
        data = Files.createDirectory(tmp.resolve("data"));
        input = Files.writeString(data.resolve("in.jsonl"), "{\"id\": 0, \"input_ids\": [1, 2]}\n");
        canary = Files.writeString(data.resolve("thesis.tex"), "years of work");
        model = Files.createDirectory(tmp.resolve("model"));
        cwd = Files.createDirectory(tmp.resolve("work"));
    }

    private void check(Path output, boolean overwrite) {
        BatchOutput.check(output.toString(), input.toString(), model, cwd, overwrite);
    }

    @Test
    void theFolderHoldingTheInputIsRefusedEvenWithOverwrite() {
        assertThatThrownBy(() -> check(data, true)).isInstanceOf(UsageException.class)
                .hasMessageContaining("--output").hasMessageContaining("holds the input");
    }

    @Test
    void theInputFileItselfIsRefused() {
        assertThatThrownBy(() -> check(input, true)).isInstanceOf(UsageException.class)
                .hasMessageContaining("is the input");
    }

    @Test
    void theWorkingDirectoryIsRefused() {
        assertThatThrownBy(() -> BatchOutput.check(".", input.toString(), model, Path.of("").toAbsolutePath(), true))
                .isInstanceOf(UsageException.class).hasMessageContaining("is the working directory");
        assertThatThrownBy(() -> check(cwd, true)).isInstanceOf(UsageException.class)
                .hasMessageContaining("is the working directory");
    }

    @Test
    void aFolderAboveTheInputAndTheWorkingDirectoryIsRefused() {
        assertThatThrownBy(() -> check(tmp, true)).isInstanceOf(UsageException.class)
                .hasMessageContaining("holds the input");
    }

    @Test
    void theModelFolderIsRefused() {
        assertThatThrownBy(() -> check(model, true)).isInstanceOf(UsageException.class)
                .hasMessageContaining("is the model folder");
    }

    @Test
    void aLinkToTheInputFolderIsTheInputFolder() throws IOException {
        Path link = Files.createSymbolicLink(tmp.resolve("link"), data);
        assertThatThrownBy(() -> check(link, true)).isInstanceOf(UsageException.class)
                .hasMessageContaining("holds the input");
    }

    @Test
    void aFolderInsideAnInputFolderIsRefused() {
        assertThatThrownBy(() -> BatchOutput.check(data.resolve("out").toString(), data.toString(), model, cwd, false))
                .isInstanceOf(UsageException.class).hasMessageContaining("inside the input folder");
    }

    @Test
    void anExistingFolderWithoutOverwriteIsRefused() throws IOException {
        Path out = Files.createDirectory(tmp.resolve("out"));
        assertThatThrownBy(() -> check(out, false)).isInstanceOf(UsageException.class)
                .hasMessageContaining("exists").hasMessageContaining("--overwrite");
    }

    @Test
    void anExistingFolderFerryDidNotMarkIsRefusedEvenWithOverwrite() throws IOException {
        Path out = Files.createDirectory(tmp.resolve("out"));
        Files.writeString(out.resolve("notes.txt"), "mine");
        assertThatThrownBy(() -> check(out, true)).isInstanceOf(UsageException.class)
                .hasMessageContaining("not a batch output of Ferry's").hasMessageContaining(BatchOutput.MARKER);
    }

    @Test
    void aMarkedOutputHoldingAFileSparkDidNotWriteIsRefused() throws IOException {
        Path out = Files.createDirectory(tmp.resolve("out"));
        BatchOutput.mark(out.toString());
        Files.writeString(out.resolve("part-00000-x.json"), "{}\n");
        Files.writeString(out.resolve("notes.txt"), "mine");
        assertThatThrownBy(() -> check(out, true)).isInstanceOf(UsageException.class)
                .hasMessageContaining("notes.txt").hasMessageContaining("would delete");
    }

    @Test
    void aMarkedOutputOfSparksFilesMayBeOverwritten() throws IOException {
        Path out = Files.createDirectory(tmp.resolve("out"));
        BatchOutput.mark(out.toString());
        Files.writeString(out.resolve("part-00000-x.json"), "{}\n");
        Files.writeString(out.resolve(".part-00000-x.json.crc"), "");
        Files.writeString(out.resolve("_SUCCESS"), "");
        assertThatCode(() -> check(out, true)).doesNotThrowAnyException();
    }

    @Test
    void aNewFolderBesideTheInputIsAllowed() {
        assertThatCode(() -> check(tmp.resolve("out"), false)).doesNotThrowAnyException();
    }

    // ---------------------------------------------------------------- through the command

    private Cli batch(String output, String... more) {
        java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("batch", "--model",
                Cli.model("tiny-llama"), "--input", input.toString(), "--output", output));
        args.addAll(java.util.List.of(more));
        return Cli.run(args.toArray(String[]::new));
    }

    @Test
    void batchWithTheInputsFolderAsOutputAndOverwriteExitsTwoAndDeletesNothing() {
        Cli r = batch(data.toString(), "--overwrite");

        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("holds the input");
        assertThat(input).exists();
        assertThat(canary).hasContent("years of work");
    }

    @Test
    void batchWithTheInputFileAsOutputAndOverwriteExitsTwoAndKeepsIt() {
        Cli r = batch(input.toString(), "--overwrite");

        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("is the input");
        assertThat(input).hasContent("{\"id\": 0, \"input_ids\": [1, 2]}\n");
    }

    @Test
    void batchOverwritingAFolderOfUserFilesExitsTwoAndKeepsThem() throws IOException {
        Path out = Files.createDirectory(tmp.resolve("out"));
        Path mine = Files.writeString(out.resolve("results-2025.csv"), "a,b\n");

        Cli r = batch(out.toString(), "--overwrite");

        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("not a batch output of Ferry's");
        assertThat(mine).hasContent("a,b\n");
    }
}
