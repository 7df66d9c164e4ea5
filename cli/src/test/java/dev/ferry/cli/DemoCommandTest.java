package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** {@code ferry demo}: the main job on the model shipped in the jar. */
class DemoCommandTest {

    @Test
    void theDemoOffloadsAndMatchesTheUndispatchedRun() {
        Cli r = Cli.run("demo");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).contains(
                "Ferry demo: tiny-llama (LlamaForCausalLM, 4 decoder layers, 706.31 KiB of float32 weights)",
                "\"model.layers.0\" : \"cpu\"",
                "\"model.layers.3\" : \"disk\"",
                "9 of 59 modules hooked; main device cpu",
                "dispatched:   [4, 4, 4, 6, 248, 111, 254, 87]",
                "undispatched: [4, 4, 4, 6, 248, 111, 254, 87]",
                "tokens match: yes");
    }

    @Test
    void withoutAcceleratorTheDemoSaysCpuIsResidentAndShowsTheThreeTierPlan() {
        Cli r = Cli.run("demo", "--max-new-tokens", "2");
        assertThat(r.out()).contains("No accelerator here, so the CPU is the main device",
                "{\"model.embed_tokens\": 0, \"model.layers.0\": 0, \"model.layers.1\": \"cpu\", "
                        + "\"model.layers.2\": \"disk\"");
    }

    @Test
    void budgetTooSmallForAnythingStillRunsFromDisk() {
        Cli r = Cli.run("demo", "--max-memory", "cpu=0", "--max-new-tokens", "3");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).contains("tokens match: yes");
    }

    @Test
    void theDemoShowsThePromptAndTheNewTokensAsTextThroughTheShippedTokenizer() {
        Cli r = Cli.run("demo", "--max-new-tokens", "4");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).contains("after prompt [1, 17, 42, 99, 3, 250, 7, 128] (text \"\\x01\\x11*c\\x03",
                "dispatched:   [4, 4, 4, 6]", "as text:      \"\\x04\\x04\\x04\\x06\"");
    }

    @Test
    void aTextPromptIsEncodedOneTokenPerByteAndStillMatchesTheUndispatchedRun() {
        Cli r = Cli.run("demo", "--prompt", "Hi!", "--max-new-tokens", "3");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).contains("after prompt [72, 105, 33] (text \"Hi!\")", "tokens match: yes");
    }

    @Test
    void theLoadLineCountsTheSameBytesAsThePlanAndTheReport() {
        Cli r = Cli.run("demo", "--max-new-tokens", "1");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        // 497.81 KiB on disk: layers 1-3, norm, lm_head and the rotary frequencies computed from config.json
        assertThat(r.out()).contains("disk      497.81 KiB     unbounded",
                "cpu 208.50 KiB resident, 0 B offloaded to host memory, 497.81 KiB offloaded to disk",
                "offloaded, streamed per forward disk 497.81 KiB");
    }
}
