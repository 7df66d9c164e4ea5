package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code --help} on every command prints its usage and exits 0. */
class HelpTest {

    @ParameterizedTest
    @ValueSource(strings = {"plan", "explain", "generate", "demo"})
    void helpOnEveryCommand(String command) {
        Cli r = Cli.run(command, "--help");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).startsWith("Usage: ferry " + command).contains("--help");
    }

    @org.junit.jupiter.api.Test
    void topLevelHelpListsTheCommands() {
        Cli r = Cli.run("--help");
        assertThat(r.exitCode()).isZero();
        assertThat(r.out()).contains("plan", "explain", "generate", "demo");
    }

    @ParameterizedTest
    @ValueSource(strings = {"plan", "explain", "generate", "demo"})
    void helpStatesThePreloadDefaultAndHowToTurnItOff(String command) {
        assertThat(Cli.run(command, "--help").out().replaceAll("\\s+", " "))
                .contains("--preload, --preload-module-classes=CLASS|none")
                .contains("Default: the model's repeated block class (LlamaDecoderLayer, GPT2Block, ...); 'none' "
                        + "turns preload off.");
    }

    @ParameterizedTest
    @ValueSource(strings = {"plan", "explain", "generate"})
    void thePlanningOptionsAndAcceleratesNamesAreOnEveryPlanningCommand(String command) {
        assertThat(Cli.run(command, "--help").out()).contains("--max-memory=", "--no-split, --no-split-module-classes=",
                "--strategy=", "--dtype=");
    }
}
