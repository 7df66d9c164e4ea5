package dev.ferry.cli.batch;

import dev.ferry.cli.CommandPlugin;
import java.util.Optional;

/**
 * Registers {@code ferry batch} with the {@code ferry} command when Apache Spark is on the class path. This class
 * names no Spark type, so the service loader can create it either way.
 */
public final class BatchCommandPlugin implements CommandPlugin {

    @Override
    public String name() {
        return "batch";
    }

    @Override
    public Optional<String> missing() {
        try {
            Class.forName("org.apache.spark.sql.SparkSession", false, BatchCommandPlugin.class.getClassLoader());
            return Optional.empty();
        } catch (ClassNotFoundException | LinkageError e) {
            return Optional.of("Apache Spark (org.apache.spark:spark-sql_2.13)");
        }
    }

    @Override
    public Object command() {
        return new BatchCommand();
    }
}
