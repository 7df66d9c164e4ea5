package dev.ferry.examples.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The {@code ferry} command line: {@code plan}, {@code explain}, {@code generate}, {@code embed}, {@code batch} and
 * {@code demo} (the default
 * when run without arguments).
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
                BatchCommand.class, DemoCommand.class,
                ServeCommand.class,
                CommandLine.HelpCommand.class},
        footer = {"", "Run without arguments for the demo on the small model that ships with Ferry.",
                "Exit codes: 0 ok, 1 runtime failure, 2 bad usage."})
public final class FerryCli implements Callable<Integer> {

    public static final int USAGE = 2;
    public static final int FAILURE = 1;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        throw new CommandLine.ParameterException(spec.commandLine(),
                "missing command: plan, explain, generate, embed, batch or demo");
    }

    /** The configured command line, writing to {@code out} and {@code err}. */
    public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        CommandLine cl = new CommandLine(new FerryCli());
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
        cl.setExecutionExceptionHandler((ex, failed, parsed) -> {
            PrintWriter e = failed.getErr();
            if (ex instanceof UsageException u) {
                e.println(prefix(failed) + u.getMessage());
                e.flush();
                return USAGE;
            }
            e.println(prefix(failed) + "error: " + describe(ex));
            if (Boolean.getBoolean("ferry.stacktrace")) {
                ex.printStackTrace(e);
            }
            e.flush();
            return FAILURE;
        });
        return cl;
    }

    /** Runs {@code args} (the demo when there are none) and returns the exit code. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        String[] effective = args.length == 0 ? new String[] {"demo"} : args;
        int code = commandLine(out, err).execute(effective);
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
