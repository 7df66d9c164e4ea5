package dev.ferry.core.inject;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.dispatch.Dispatcher;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Guice is an optional dependency of ferry-core (core/pom.xml): a user of planning, dispatch or the weight stores
 * does not get it. That holds only while no class outside {@code dev.ferry.core.inject} refers to Guice.
 */
class GuiceIsOptionalTest {

    @Test
    void onlyTheInjectPackageRefersToGuice() throws Exception {
        Path classes = Path.of(Dispatcher.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        List<String> users;
        try (Stream<Path> files = Files.walk(classes)) {
            users = files.filter(f -> f.toString().endsWith(".class"))
                    .filter(GuiceIsOptionalTest::mentionsGuice)
                    .map(f -> classes.relativize(f).toString().replace('\\', '/'))
                    .sorted().toList();
        }
        assertThat(users).isNotEmpty().allMatch(c -> c.startsWith("dev/ferry/core/inject/"));
    }

    private static boolean mentionsGuice(Path classFile) {
        try {
            return new String(Files.readAllBytes(classFile), StandardCharsets.ISO_8859_1).contains("com/google/inject");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
