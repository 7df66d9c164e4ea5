package dev.ferry.examples.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import jdk.jfr.Recording;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JfrSummaryTest {

    static volatile long sink;

    /** Busy for {@code millis}: arithmetic no compiler can drop. */
    static void spin(long millis) {
        long end = System.nanoTime() + millis * 1_000_000;
        long x = 1;
        while (System.nanoTime() < end) {
            for (int i = 0; i < 10_000; i++) {
                x = x * 6364136223846793005L + 1442695040888963407L;
            }
        }
        sink = x;
    }

    @Test
    void aBusyThreadsSamplesNameTheMethodItSpinsIn(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("spin.jfr");
        try (Recording r = new Recording()) {
            r.enable(JfrSummary.JAVA).withPeriod(Duration.ofMillis(10));
            r.start();
            Thread t = new Thread(() -> spin(800), "spinner");
            t.start();
            t.join();
            r.stop();
            r.dump(file);
        }
        JfrSummary.Summary s = JfrSummary.summarize(file, "spinner", 5);
        System.out.print(JfrSummary.format(s, "spinner"));
        assertThat(s.javaSamples()).isGreaterThan(10);
        assertThat(s.javaTop()).isNotEmpty();
        assertThat(s.javaTop().get(0).frame()).endsWith("JfrSummaryTest.spin");
        assertThat(s.ferryOnStack()).extracting(JfrSummary.Count::frame)
                .contains("dev.ferry.examples.bench.JfrSummaryTest.spin");
    }

    @Test
    void anotherThreadsNameLeavesNoSamples(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("spin.jfr");
        try (Recording r = new Recording()) {
            r.enable(JfrSummary.JAVA).withPeriod(Duration.ofMillis(10));
            r.start();
            Thread t = new Thread(() -> spin(300), "spinner");
            t.start();
            t.join();
            r.stop();
            r.dump(file);
        }
        assertThat(JfrSummary.summarize(file, "nobody", 5).javaSamples()).isZero();
    }
}
