package dev.ferry.examples.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedThread;
import jdk.jfr.consumer.RecordingFile;

/**
 * Where a Java Flight Recording says a thread's time went, in text: the frames its samples stopped in (execution
 * samples: Java code running; native-method samples: the thread inside a native call, such as a JNI call into
 * libtorch or a read), and the Ferry methods on its stacks, each counted once per sample. For the decode loop of
 * {@link DecodeBenchmark} on a GPU, where the forward thread is busy all the time: which calls hold it.
 *
 * <pre>
 * java -XX:StartFlightRecording=filename=decode.jfr,settings=profile -cp ... DecodeBenchmark MODEL MAP ...
 * java -cp ... dev.ferry.examples.bench.JfrSummary decode.jfr [thread=main] [top=20]
 * </pre>
 */
public final class JfrSummary {

    static final String JAVA = "jdk.ExecutionSample";
    static final String NATIVE = "jdk.NativeMethodSample";

    /** A frame (class.method) and how many samples it was counted in. */
    public record Count(String frame, long samples) {
    }

    /**
     * The samples of one thread (or all): how many of each kind, the frames they stopped in, and the Ferry methods on
     * their stacks (each at most once per sample), most frequent first.
     */
    public record Summary(long javaSamples, long nativeSamples, List<Count> javaTop, List<Count> nativeTop,
                          List<Count> ferryOnStack) {
    }

    private JfrSummary() {
    }

    public static void main(String[] args) {
        if (args.length < 1) {
            System.err.println("usage: JfrSummary FILE.jfr [thread=NAME] [top=20]");
            System.exit(2);
        }
        String thread = null;
        int top = 20;
        for (int i = 1; i < args.length; i++) {
            if (args[i].startsWith("thread=")) {
                thread = args[i].substring("thread=".length());
            } else if (args[i].startsWith("top=")) {
                top = Integer.parseInt(args[i].substring("top=".length()));
            } else {
                System.err.println("unknown option " + args[i] + " (expected thread=NAME or top=N)");
                System.exit(2);
            }
        }
        System.out.print(format(summarize(Path.of(args[0]), thread, top), thread));
    }

    /** The summary of {@code file}'s samples of thread {@code thread} ({@code null}: every thread), {@code top} each. */
    public static Summary summarize(Path file, String thread, int top) {
        Map<String, Long> javaTop = new HashMap<>();
        Map<String, Long> nativeTop = new HashMap<>();
        Map<String, Long> ferry = new HashMap<>();
        long[] n = new long[2];
        try (RecordingFile recording = new RecordingFile(file)) {
            while (recording.hasMoreEvents()) {
                RecordedEvent e = recording.readEvent();
                String type = e.getEventType().getName();
                boolean java = type.equals(JAVA);
                if (!java && !type.equals(NATIVE)) {
                    continue;
                }
                RecordedThread t = e.getThread("sampledThread");
                if (thread != null && (t == null || !thread.equals(t.getJavaName()))) {
                    continue;
                }
                if (e.getStackTrace() == null || e.getStackTrace().getFrames().isEmpty()) {
                    continue;
                }
                List<RecordedFrame> frames = e.getStackTrace().getFrames();
                n[java ? 0 : 1]++;
                (java ? javaTop : nativeTop).merge(name(frames.get(0)), 1L, Long::sum);
                Set<String> seen = new HashSet<>();
                for (RecordedFrame f : frames) {
                    String name = name(f);
                    if (name.startsWith("dev.ferry.") && seen.add(name)) {
                        ferry.merge(name, 1L, Long::sum);
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the recording " + file, e);
        }
        return new Summary(n[0], n[1], first(javaTop, top), first(nativeTop, top), first(ferry, top));
    }

    /** The summary as text: a line per frame with its share of the samples of its kind. */
    public static String format(Summary s, String thread) {
        StringBuilder out = new StringBuilder();
        String who = thread == null ? "all threads" : "thread " + thread;
        long all = s.javaSamples() + s.nativeSamples();
        out.append(String.format(Locale.ROOT, "# %s: %d samples, %d in Java code, %d in native calls%n", who, all,
                s.javaSamples(), s.nativeSamples()));
        section(out, "stopped in, Java code", s.javaTop(), s.javaSamples());
        section(out, "stopped in, native calls", s.nativeTop(), s.nativeSamples());
        section(out, "Ferry methods on the stack (either kind)", s.ferryOnStack(), all);
        return out.toString();
    }

    private static void section(StringBuilder out, String title, List<Count> counts, long of) {
        out.append("## ").append(title).append('\n');
        for (Count c : counts) {
            out.append(String.format(Locale.ROOT, "  %5.1f%%  %6d  %s%n", of == 0 ? 0 : 100.0 * c.samples() / of,
                    c.samples(), c.frame()));
        }
    }

    private static String name(RecordedFrame f) {
        return f.getMethod().getType().getName() + "." + f.getMethod().getName();
    }

    private static List<Count> first(Map<String, Long> counts, int top) {
        List<Count> out = new ArrayList<>();
        counts.forEach((k, v) -> out.add(new Count(k, v)));
        out.sort(Comparator.comparingLong(Count::samples).reversed().thenComparing(Count::frame));
        return out.subList(0, Math.min(top, out.size()));
    }
}
