package dev.ferry.cli;

import java.io.PrintWriter;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Progress of a long step: a progress bar on stderr when the output is a terminal, otherwise one plain line
 * when it starts and one when it ends (so logs and pipes stay readable).
 */
final class Progress implements AutoCloseable {

    private final ProgressBar bar;
    private final PrintWriter err;
    private final String task;
    private final long startNanos = System.nanoTime();
    private long done;

    private Progress(ProgressBar bar, PrintWriter err, String task) {
        this.bar = bar;
        this.err = err;
        this.task = task;
    }

    /** Whether the output is a terminal (then progress bars are drawn). */
    static boolean isTerminal() {
        return System.console() != null;
    }

    /**
     * @param unit      e.g. {@code "KiB"} or {@code " tokens"}
     * @param unitSize  how many steps make one {@code unit}
     */
    static Progress start(PrintWriter err, String task, long max, String unit, long unitSize, String plainStart) {
        if (isTerminal()) {
            ProgressBar bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(max)
                    .setUnit(unit, unitSize).setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(100)
                    .continuousUpdate().build();
            return new Progress(bar, err, task);
        }
        err.println(task + ": " + plainStart);
        err.flush();
        return new Progress(null, err, task);
    }

    void step(long n) {
        done += n;
        if (bar != null) {
            bar.stepBy(n);
        }
    }

    long done() {
        return done;
    }

    /** Ends the bar, or prints the closing plain line {@code task: <summary>}. */
    void finish(String summary) {
        if (bar != null) {
            bar.close();
        } else {
            err.println(task + ": " + summary);
            err.flush();
        }
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }

    double seconds() {
        return (System.nanoTime() - startNanos) / 1e9;
    }
}
