package dev.ferry.examples;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.Fixtures;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Fault injection: weight files truncated by "another process" (the test's main thread) while a thread generates in a
 * loop, on both backends, streaming layer 3 from the checkpoint in place or from an offload folder. Before, tensors
 * were memory-mapped and native code (libtorch, ONNX Runtime) read pages past the new end: SIGBUS, the JVM (here the
 * forked test JVM) gone. Now weights are read into memory Ferry owns: resident ones keep working, a streamed block
 * whose file got shorter fails the call with an error naming the file, and the JVM lives to assert it.
 */
class TruncationDuringForwardTest {

    @TempDir
    Path tmp;

    /** A private copy of tiny-llama (the fixture itself is never touched). */
    Path copyOfTinyLlama() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("tiny-llama"));
        try (Stream<Path> files = Files.list(Fixtures.model("tiny-llama"))) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        return dir;
    }

    static void truncateToHalf(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() / 2);
        }
    }

    static List<Path> filesEndingWith(Path dir, String suffix) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(suffix)).sorted().toList();
        }
    }

    /**
     * @param backend  pytorch or onnx
     * @param source   where layer 3 streams from: {@code checkpoint} (in place) or {@code folder} (an offload folder)
     * @param truncate which files are cut: {@code .safetensors}, {@code .dat} or {@code .onnx}, or
     *                 {@code resident-shards}: the shards holding no tensor of layer 3 (PyTorch's offload folder keeps
     *                 tensors of the checkpoint's dtype as references into its shards, so it has no {@code .dat})
     * @param survives whether generation goes on with golden tokens (the files cut are not read per forward)
     */
    @ParameterizedTest(name = "{0}, layer 3 from {1}, {2} cut: survives={3}")
    @CsvSource({
        "pytorch, checkpoint, .safetensors,    false",
        "pytorch, checkpoint, resident-shards, true",
        "pytorch, folder,     .safetensors,    false",
        "onnx,    checkpoint, .onnx,           true",
        "onnx,    folder,     .dat,            false",
    })
    void truncatingWeightsDuringForwardsIsANamedErrorOrHarmlessNeverACrash(String backend, String source,
            String truncate, boolean survives) throws Exception {
        JsonNode golden = FerryBuilderTest.golden("tiny-llama");
        long[] prompt = FerryBuilderTest.longs(golden.get("input_ids"));
        long[] expected = FerryBuilderTest.longs(golden.get("greedy_new_tokens"));
        Path dir = copyOfTinyLlama();
        Ferry.Builder builder = Ferry.model(dir).deviceMap(FerryBuilderTest.layer3OnDisk()).backend(backend);
        Path offload = tmp.resolve("offload");
        if (source.equals("folder")) {
            builder.offloadFolder(offload);
        }
        try (DispatchedModel model = builder.load()) {
            List<Path> cut = truncate.equals("resident-shards") ? shardsWithout(dir, "model.layers.3.")
                    : filesEndingWith(truncate.equals(".dat") ? offload : dir, truncate);
            assertThat(cut).as("files to cut").isNotEmpty();
            AtomicInteger goldenRuns = new AtomicInteger();
            ConcurrentLinkedQueue<long[]> wrong = new ConcurrentLinkedQueue<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            CountDownLatch warm = new CountDownLatch(3);
            CountDownLatch afterCut = new CountDownLatch(20);
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            Thread generator = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        long[] out = model.generate(prompt, GenerationConfig.greedy(8));
                        if (Arrays.equals(out, expected)) {
                            goldenRuns.incrementAndGet();
                        } else {
                            wrong.add(out);
                        }
                        warm.countDown();
                        if (warm.getCount() == 0) {
                            afterCut.countDown();
                        }
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            }, "generate");
            generator.start();
            assertThat(warm.await(60, TimeUnit.SECONDS)).isTrue();
            for (Path f : cut) {
                truncateToHalf(f); // while forwards run
            }
            if (survives) {
                assertThat(afterCut.await(60, TimeUnit.SECONDS)).as("generations after the cut").isTrue();
                stop.set(true);
            }
            generator.join(60_000);
            assertThat(generator.isAlive()).isFalse();

            assertThat(wrong).as("tokens other than golden.json's").isEmpty();
            if (survives) {
                assertThat(failure.get()).as("a failure although no file read per forward was cut").isNull();
                assertThat(goldenRuns.get()).isGreaterThanOrEqualTo(22);
            } else {
                Throwable t = failure.get();
                assertThat(t).as("the call that met the cut file fails").isInstanceOf(RuntimeException.class);
                assertThat(messages(t)).as("the error names the cut file").containsAnyOf(
                        cut.stream().map(p -> p.getFileName().toString()).toArray(String[]::new));
            }
        }
    }

    /** The shards of {@code dir}'s index that hold no tensor whose name starts with {@code prefix}. */
    static List<Path> shardsWithout(Path dir, String prefix) throws IOException {
        JsonNode map = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(dir.resolve("model.safetensors.index.json").toFile()).get("weight_map");
        java.util.Set<String> all = new java.util.TreeSet<>();
        java.util.Set<String> holding = new java.util.TreeSet<>();
        map.properties().forEach(e -> {
            all.add(e.getValue().asText());
            if (e.getKey().startsWith(prefix)) {
                holding.add(e.getValue().asText());
            }
        });
        all.removeAll(holding);
        return all.stream().map(dir::resolve).toList();
    }

    static String messages(Throwable t) {
        List<String> out = new ArrayList<>();
        for (Throwable c = t; c != null; c = c.getCause()) {
            out.add(String.valueOf(c.getMessage()));
        }
        return String.join(" <- ", out);
    }
}
