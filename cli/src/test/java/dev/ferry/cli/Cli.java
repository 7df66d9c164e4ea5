package dev.ferry.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** Runs {@code ferry} in-process and keeps what it printed. */
public record Cli(int exitCode, String out, String err) {

    public static Cli run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = FerryCli.run(new PrintWriter(out), new PrintWriter(err), args);
        return new Cli(code, out.toString(), err.toString());
    }

    public static Path fixtures() {
        return dev.ferry.core.testing.Fixtures.dir();
    }

    public static String model(String name) {
        return fixtures().resolve(name).toString();
    }

    public JsonNode json() {
        try {
            return new ObjectMapper().readTree(out);
        } catch (IOException e) {
            throw new UncheckedIOException("stdout is not JSON: " + out + "\nstderr: " + err, e);
        }
    }

    /** {@code greedy_new_tokens} of a fixture's golden.json. */
    public static long[] goldenTokens(String fixture) {
        return longs(golden(fixture).get("greedy_new_tokens"));
    }

    public static String goldenPrompt(String fixture) {
        StringBuilder sb = new StringBuilder();
        golden(fixture).get("input_ids").forEach(n -> sb.append(sb.length() == 0 ? "" : ",").append(n.asLong()));
        return sb.toString();
    }

    public static JsonNode golden(String fixture) {
        try {
            return new ObjectMapper().readTree(fixtures().resolve(fixture).resolve("golden.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asLong();
        }
        return out;
    }

    @Override
    public String toString() {
        return "exit " + exitCode + "\n--- stdout\n" + out + "--- stderr\n" + err;
    }
}
