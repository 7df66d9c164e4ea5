package dev.ferry.cli;

import java.util.Optional;

/**
 * A {@code ferry} subcommand that lives in another jar because it needs libraries the lean distribution leaves out
 * ({@code batch} and Apache Spark). Found through {@link java.util.ServiceLoader}; the command object is created
 * only when {@link #missing()} is empty, since picocli inspects a command's class (and so loads what its fields
 * name) as soon as it is registered.
 */
public interface CommandPlugin {

    /** The subcommand's name, e.g. {@code batch}. */
    String name();

    /** What the class path lacks for this command to run, in words naming the artifacts; empty when nothing. */
    Optional<String> missing();

    /** A new command object for picocli (annotated with {@code @Command}). */
    Object command();
}
