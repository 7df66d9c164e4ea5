package dev.ferry.examples.cli;

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
}
