package dev.ferry.cli.batch;

import dev.ferry.cli.UsageException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Where {@code ferry batch} may write, so that an output never eats an input. Spark's overwrite mode deletes the whole
 * output folder before writing, so:
 * <ul>
 * <li>the output may not be, nor lie above, the input, the working directory or the model folder, nor lie inside an
 * input folder (its part files would become input rows);</li>
 * <li>{@code --overwrite} replaces only a previous batch output: a folder holding Ferry's marker {@value #MARKER}
 * (written into every output after its job) and nothing but what Spark writes there (part files, their checksums,
 * {@code _SUCCESS}); anything else in it is named and the folder left alone.</li>
 * </ul>
 * Paths are compared after resolving links, so a link to the input is the input. URIs with a scheme other than
 * {@code file:} (HDFS, S3) are not checked here.
 */
final class BatchOutput {

    /** Ferry's marker in a batch output folder; Spark and Hadoop skip names starting with '_' when reading. */
    static final String MARKER = "_FERRY_BATCH_OUTPUT";
    private static final String FORMAT = "ferry-batch-output/1";
    /** What Spark's file writers leave in an output folder besides Ferry's marker. */
    private static final Pattern SPARKS = Pattern.compile(
            "(\\.?part-.*)|(_SUCCESS)|(\\._SUCCESS\\.crc)|(\\." + MARKER + "\\.crc)|(_temporary)");

    private BatchOutput() {
    }

    /** Whether {@code location} is a local path (no scheme, or {@code file:}), which this class checks. */
    static boolean isLocal(String location) {
        return !location.contains("://") || location.startsWith("file:");
    }

    static Path local(String location) {
        return location.startsWith("file:") ? Path.of(java.net.URI.create(location)) : Path.of(location);
    }

    /**
     * Refuses (a {@link UsageException} naming the reason) an output that would eat an input; does nothing for
     * non-local outputs.
     *
     * @param cwd the working directory (a parameter so that tests never point Spark at the real one)
     */
    static void check(String output, String input, Path model, Path cwd, boolean overwrite) {
        if (!isLocal(output)) {
            return;
        }
        Path out = canonical(local(output));
        Map<String, Path> inputs = new LinkedHashMap<>();
        if (isLocal(input)) {
            inputs.put("the input " + input, canonical(withoutGlob(local(input))));
        }
        inputs.put("the working directory", canonical(cwd));
        inputs.put("the model folder " + model, canonical(model));
        for (Map.Entry<String, Path> e : inputs.entrySet()) {
            Path protectedPath = e.getValue();
            if (out.equals(protectedPath)) {
                throw refused(output, "is " + e.getKey());
            }
            if (protectedPath.startsWith(out)) {
                throw refused(output, "holds " + e.getKey() + " (" + protectedPath + ")");
            }
        }
        Path in = inputs.values().iterator().next();
        if (isLocal(input) && Files.isDirectory(in) && out.startsWith(in)) {
            throw refused(output, "lies inside the input folder " + input + ", whose files Spark reads as rows");
        }
        if (!Files.exists(out, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        if (!overwrite) {
            throw new UsageException("--output: " + output + " exists; pass --overwrite to replace a previous batch "
                    + "output there");
        }
        if (!Files.isDirectory(out, LinkOption.NOFOLLOW_LINKS)) {
            throw refused(output, "exists and is not a folder; --overwrite replaces only a previous batch output");
        }
        if (!isMarker(out.resolve(MARKER))) {
            throw refused(output, "exists and is not a batch output of Ferry's (no " + MARKER + " in it); "
                    + "--overwrite replaces only those. Choose a new folder, or remove this one yourself");
        }
        List<String> foreign = new ArrayList<>();
        try (Stream<Path> files = Files.list(out)) {
            files.map(p -> p.getFileName().toString()).filter(n -> !n.equals(MARKER) && !SPARKS.matcher(n).matches())
                    .sorted().forEach(foreign::add);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + out, e);
        }
        if (!foreign.isEmpty()) {
            throw refused(output, "is a previous batch output but also holds " + foreign.size() + " file(s) Ferry "
                    + "did not write there: " + (foreign.size() > 5 ? foreign.subList(0, 5) + " ... and "
                    + (foreign.size() - 5) + " more" : foreign) + "; --overwrite would delete them");
        }
    }

    /** Marks a finished local output as Ferry's, so a later {@code --overwrite} may replace it. */
    static void mark(String output) {
        if (!isLocal(output)) {
            return;
        }
        Path dir = local(output);
        try {
            Files.writeString(dir.resolve(MARKER), "{\"format\": \"" + FORMAT + "\"}\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot mark " + dir + " as a batch output", e);
        }
    }

    private static boolean isMarker(Path file) {
        try {
            return Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS) && Files.size(file) < 4096
                    && Files.readString(file, StandardCharsets.UTF_8).contains(FORMAT);
        } catch (IOException e) {
            return false;
        }
    }

    private static UsageException refused(String output, String why) {
        return new UsageException("--output: " + output + " " + why + "; Ferry does not write there");
    }

    /** A Spark input pattern's folder part: {@code data/*.jsonl} protects {@code data}. */
    private static Path withoutGlob(Path p) {
        Path out = p.isAbsolute() ? p.getRoot() : Path.of("");
        for (Path part : p) {
            if (part.toString().matches(".*[*?\\[{].*")) {
                break;
            }
            out = out.resolve(part);
        }
        return out;
    }

    /**
     * The absolute, normalised path with every link of its existing part resolved ({@code toRealPath} of the
     * longest existing ancestor, the rest appended), so two names of one place compare equal.
     */
    static Path canonical(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        Path existing = abs;
        List<Path> rest = new ArrayList<>();
        while (existing != null && !Files.exists(existing)) {
            rest.add(0, existing.getFileName());
            existing = existing.getParent();
        }
        if (existing == null) {
            return abs;
        }
        Path real;
        try {
            real = existing.toRealPath();
        } catch (IOException e) {
            return abs;
        }
        for (Path r : rest) {
            real = real.resolve(r);
        }
        return real;
    }
}
