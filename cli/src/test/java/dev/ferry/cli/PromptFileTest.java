package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prompts from a file or standard input are UTF-8 whatever the locale, and the CLI says when the locale mangled an
 * argument (under LANG=C the JVM turns a non-ASCII --prompt into U+FFFD or '?', and the prompt silently lost its
 * bytes).
 */
class PromptFileTest {

    @TempDir
    Path tmp;

    static long[] promptIds(Cli r) {
        assertThat(r.exitCode()).as(r.toString()).isZero();
        return Cli.longs(r.json().get("prompt_ids"));
    }

    static Cli generate(String... prompt) {
        List<String> args = new java.util.ArrayList<>(List.of("generate", "--model", Cli.model("tiny-llama"),
                "--max-new-tokens", "1", "--format", "json"));
        args.addAll(List.of(prompt));
        return Cli.run(args.toArray(String[]::new));
    }

    @Test
    void aPromptFileIsReadAsUtf8AndGivesWhatTheSameTextGives() throws Exception {
        Path file = Files.write(tmp.resolve("prompt.txt"), "café\n".getBytes(StandardCharsets.UTF_8));

        long[] fromFile = promptIds(generate("--prompt-file", file.toString()));

        // byte-level BPE: c, a, f and the two UTF-8 bytes of é (0xC3 0xA9), not the '?' a C locale leaves
        assertThat(fromFile).hasSize(5).containsExactly(promptIds(generate("--prompt", "café")));
        assertThat(fromFile).doesNotContain(promptIds(generate("--prompt", "?"))[0]);
    }

    @Test
    void promptFileDashReadsStandardInput() {
        InputStream saved = System.in;
        try {
            System.setIn(new ByteArrayInputStream("Hi!".getBytes(StandardCharsets.UTF_8)));
            assertThat(promptIds(generate("--prompt-file", "-"))).containsExactly(72, 105, 33);
        } finally {
            System.setIn(saved);
        }
    }

    @Test
    void aPromptFileThatIsNotUtf8IsBadUsageNamingIt() throws Exception {
        Path file = Files.write(tmp.resolve("latin1.txt"), new byte[] {'c', 'a', 'f', (byte) 0xE9});
        Cli r = generate("--prompt-file", file.toString());
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("--prompt-file").contains(file.toString()).contains("not valid UTF-8");
    }

    @Test
    void aMissingPromptFileIsBadUsage() {
        Cli r = generate("--prompt-file", tmp.resolve("none.txt").toString());
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("--prompt-file").contains("no such file");
    }

    @Test
    void argumentsMangledByANonUtf8LocaleAreWarnedAbout() {
        assertThat(PromptText.localeWarnings(new String[] {"generate", "--prompt", "caf\uFFFD"}, "ANSI_X3.4-1968"))
                .singleElement().asString().contains("--prompt").contains("ANSI_X3.4-1968").contains("--prompt-file");
        assertThat(PromptText.localeWarnings(new String[] {"generate", "--prompt", "caf??"}, "ANSI_X3.4-1968"))
                .hasSize(1);
        assertThat(PromptText.localeWarnings(new String[] {"generate", "--prompt", "caf\uFFFD"}, "UTF-8")).isEmpty();
        assertThat(PromptText.localeWarnings(new String[] {"generate", "--prompt", "cafe"}, "ANSI_X3.4-1968"))
                .isEmpty();
    }

    @Test
    void aJvmUnderLangCWarnsThatItsPromptWasMangled() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                "-Dai.djl.offline=true", FerryCli.class.getName(), "generate", "--model",
                tmp.resolve("no-model").toString(), "--prompt", "café");
        pb.environment().put("LANG", "C");
        pb.environment().put("LC_ALL", "C");
        pb.redirectErrorStream(true);
        pb.redirectOutput(tmp.resolve("out.txt").toFile());
        Process p = pb.start();
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        String out = Files.readString(tmp.resolve("out.txt"));
        assertThat(out).contains("warning: --prompt holds").contains("not UTF-8");
        assertThat(p.exitValue()).isEqualTo(2); // then the missing model folder, as usual
    }
}
