package dev.ferry.cli;

import dev.ferry.core.inject.ModelLoaders;
import dev.ferry.core.load.BackendUnavailableException;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The {@code ferry} command line: {@code plan}, {@code explain}, {@code generate}, {@code embed}, {@code demo},
 * and {@code batch} when {@code ferry-cli-batch} and Apache Spark are on the class path ({@link Plugins}); without
 * arguments it prints its usage.
 *
 * <p>Exit codes: 0 on success; 2 for bad usage (an unknown or malformed option, a missing model folder, an
 * unreadable device map or one with duplicate keys or trailing text, a bad size string, an unknown strategy, a
 * {@code config.json} size out of range or not divisible, a token id outside the vocabulary, a prompt longer than
 * the positions), with one line on stderr naming the option or file, the same on both backends and before any
 * weight is read; 1 for a failure while running, with its cause.
 */
@Command(name = "ferry", mixinStandardHelpOptions = true, versionProvider = FerryCli.Version.class,
        description = "Runs models larger than one accelerator's memory: plans device maps, explains how a model "
                + "will be dispatched, generates with the model dispatched over accelerators, CPU and disk.",
        subcommands = {PlanCommand.class, ExplainCommand.class, GenerateCommand.class, EmbedCommand.class,
                DemoCommand.class, ServeCommand.class, QuantizeCommand.class,
                CommandLine.HelpCommand.class},
        footer = {"", "Try 'ferry demo': the main job on the small model that ships with Ferry.",
                "Exit codes: 0 ok, 1 runtime failure, 2 bad usage."})
public final class FerryCli implements Callable<Integer> {

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(FerryCli.class);

    public static final int USAGE = 2;
    public static final int FAILURE = 1;

    @Spec
    CommandSpec spec;

    /** {@code ferry} alone: its usage, the commands and how to start. */
    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getOut());
        return 0;
    }

    /** The configured command line, writing to {@code out} and {@code err}. */
    public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        CommandLine cl = new CommandLine(new FerryCli());
        Plugins.register(cl);
        cl.setOut(out);
        cl.setErr(err);
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setParameterExceptionHandler((ex, args) -> {
            CommandLine bad = ex.getCommandLine();
            bad.getErr().println(prefix(bad) + Suggestions.message(ex) + " (see '"
                    + bad.getCommandSpec().qualifiedName() + " --help')");
            bad.getErr().flush();
            return USAGE;
        });
        cl.setExecutionExceptionHandler((thrown, failed, parsed) -> {
            // a Ferry exception thrown while Guice provides a backend (no libtorch), without Guice's report around it
            Exception ex = thrown instanceof RuntimeException r ? ModelLoaders.unwrap(r) : thrown;
            PrintWriter e = failed.getErr();
            if (ex instanceof UsageException u) {
                e.println(prefix(failed) + u.getMessage());
                e.flush();
                return USAGE;
            }
            // a missing libtorch is one sentence naming what to add; DJL's causes would only bury it
            e.println(prefix(failed) + "error: " + (ex instanceof BackendUnavailableException ? ex.getMessage()
                    : failure(ex)));
            LOG.debug("{} failed", prefix(failed), ex); // the whole trace, for --debug logging
            if (Boolean.getBoolean("ferry.stacktrace")) {
                thrown.printStackTrace(e);
            }
            e.flush();
            return FAILURE;
        });
        return cl;
    }

    /** Runs {@code args} (the usage when there are none) and returns the exit code. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        PromptText.localeWarnings(args, System.getProperty("sun.jnu.encoding")).forEach(err::println);
        int code;
        try {
            code = commandLine(out, err).execute(args);
        } catch (OutOfMemoryError e) {
            // picocli hands Errors through: one line with what to change, not a trace
            err.println("ferry: error: " + outOfMemory(e));
            code = FAILURE;
        }
        out.flush();
        err.flush();
        return code;
    }

    public static void main(String[] args) {
        // DJL must not try to download anything: the PyTorch native library ships in the jar's class path
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
        PrintWriter out = new PrintWriter(System.out, true);
        PrintWriter err = new PrintWriter(System.err, true);
        System.exit(run(out, err, args));
    }

    private static String prefix(CommandLine cl) {
        return cl.getCommandSpec().qualifiedName() + ": ";
    }

    /**
     * What a failure prints after {@code error:}, on one line: out of memory gets what to change; a failure that came
     * through Spark (its messages carry remote stack traces, 80 to 200 lines) gets Ferry's own cause first and
     * Spark's first line after it; anything else {@link #describe}.
     */
    static String failure(Throwable ex) {
        for (Throwable t = ex; t != null; t = t.getCause() == t ? null : t.getCause()) {
            String m = String.valueOf(t.getMessage());
            if (t instanceof OutOfMemoryError || m.contains("out of memory") || m.contains("not enough memory")) {
                return outOfMemory(t);
            }
        }
        Throwable spark = null;
        for (Throwable t = ex; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t.getClass().getName().startsWith("org.apache.spark")) {
                spark = t;
                break;
            }
        }
        if (spark == null) {
            return describe(ex);
        }
        Throwable own = rootCause(ex);
        for (Throwable t = ex; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t.getClass().getName().startsWith("dev.ferry") || (t.getStackTrace().length > 0
                    && t.getStackTrace()[0].getClassName().startsWith("dev.ferry"))) {
                own = t; // the deepest of Ferry's own wins: keep looking
            }
        }
        String first = firstLine(own.getMessage() == null ? own.getClass().getSimpleName() : own.getMessage());
        String sparkLine = firstLine(String.valueOf(spark.getMessage()));
        if (sparkLine.length() > 160) {
            sparkLine = sparkLine.substring(0, 160) + "...";
        }
        return first + " (in Spark: " + sparkLine + "; the whole trace at debug level: "
                + "-Dorg.slf4j.simpleLogger.defaultLogLevel=debug)";
    }

    /** One line for running out of memory: what ran out and what to change. */
    static String outOfMemory(Throwable e) {
        return "out of memory (" + firstLine(String.valueOf(e.getMessage())) + "): the model and its work do not fit "
                + "in what this process may use. Keep less in memory: a smaller --max-memory budget (cpu=..., or "
                + "the GPU's), more blocks offloaded to disk (--offload-dir), fewer rows at once (--batch-size); or "
                + "give the JVM more (-Xmx for its heap, -XX:MaxDirectMemorySize for weights in host memory)";
    }

    private static Throwable rootCause(Throwable ex) {
        Throwable t = ex;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t;
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return (nl < 0 ? s : s.substring(0, nl)).strip();
    }

    /** The message of {@code ex} and of each distinct cause, on one line. */
    static String describe(Throwable ex) {
        StringBuilder sb = new StringBuilder();
        String last = null;
        for (Throwable t = ex; t != null; t = t.getCause() == t ? null : t.getCause()) {
            String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
            if (last != null && last.contains(m)) {
                continue;
            }
            if (sb.length() > 0) {
                sb.append(": caused by ");
            }
            if (t.getMessage() == null || t instanceof NullPointerException || t instanceof UnsupportedOperationException) {
                sb.append(t.getClass().getSimpleName()).append(t.getMessage() == null ? "" : " " + m);
            } else {
                sb.append(m);
            }
            last = m;
        }
        return sb.toString().replace('\n', ' ');
    }

    /** {@code ferry --version}. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = FerryCli.class.getPackage().getImplementationVersion();
            return new String[] {"ferry " + (v == null ? "0.1.0-SNAPSHOT" : v)};
        }
    }
}
