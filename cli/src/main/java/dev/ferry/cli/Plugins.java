package dev.ferry.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.ServiceLoader;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The subcommands that come from other jars: each {@link CommandPlugin} found on the class path is registered when
 * what it needs is present; an optional command whose jar or libraries are missing is registered as a stand-in that
 * accepts any arguments and says what to add (exit 1), so the lean distribution never loads a Spark class.
 */
final class Plugins {

    private Plugins() {
    }

    static void register(CommandLine cl) {
        // the optional commands the lean distribution knows by name, and what to add for each
        Map<String, String> missing = new TreeMap<>(Map.of("batch", batchHint()));
        for (CommandPlugin p : ServiceLoader.load(CommandPlugin.class, FerryCli.class.getClassLoader())) {
            Optional<String> lacks = p.missing();
            if (lacks.isEmpty()) {
                cl.addSubcommand(p.name(), p.command());
                missing.remove(p.name());
            } else {
                missing.put(p.name(), "ferry " + p.name() + " needs " + lacks.get() + " on the class path; "
                        + missing.getOrDefault(p.name(), ""));
            }
        }
        missing.forEach((name, message) -> cl.addSubcommand(name, standIn(name, message)));
    }

    /** Where {@code batch} comes from, with the versions of this build. */
    static String batchHint() {
        Properties v = versions();
        return "ferry batch runs on Apache Spark, which this distribution (ferry.jar) leaves out to stay small: run "
                + "ferry-batch.jar (cli-batch/target/ after mvn package, with Spark in its lib/), or put "
                + "dev.ferry:ferry-cli-batch:" + v.getProperty("ferry.version") + " and org.apache.spark:spark-sql_2.13:"
                + v.getProperty("spark.version") + " with their dependencies on the class path, or submit it with "
                + "spark-submit (README: Spark)";
    }

    private static CommandSpec standIn(String name, String message) {
        Callable<Integer> fail = () -> {
            throw new MissingCommandException(message);
        };
        CommandSpec spec = CommandSpec.wrapWithoutInspection(fail);
        spec.name(name);
        spec.usageMessage().description(List.of("Not in this distribution: " + message).toArray(String[]::new));
        // any options (--model, --help, ...) reach the stand-in, which answers with what to add
        spec.parser().unmatchedArgumentsAllowed(true).unmatchedOptionsArePositionalParams(true);
        return spec;
    }

    private static Properties versions() {
        Properties p = new Properties();
        try (InputStream in = Plugins.class.getResourceAsStream("versions.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p;
    }

    /** A command this distribution does not carry: exit 1 with what to add. */
    static final class MissingCommandException extends RuntimeException {
        MissingCommandException(String message) {
            super(message);
        }
    }
}
