package dev.ferry.core.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the test fixtures are: {@code -Dferry.fixtures} or {@code FERRY_FIXTURES} when set (the GPU harness
 * passes its own copy), else the project's {@code testdata/} folder, found from the module folder the tests run in
 * ({@code ../testdata}) or from the project root ({@code testdata}). A clone needs nothing beside it.
 */
public final class Fixtures {

    private Fixtures() {
    }

    public static Path dir() {
        String prop = System.getProperty("ferry.fixtures");
        if (prop == null || prop.isBlank()) {
            prop = System.getenv("FERRY_FIXTURES");
        }
        if (prop != null && !prop.isBlank()) {
            Path p = Path.of(prop);
            if (!Files.isDirectory(p)) {
                throw new IllegalStateException("fixtures not found: " + p.toAbsolutePath()
                        + " (from -Dferry.fixtures or FERRY_FIXTURES) is not a folder");
            }
            return p.normalize();
        }
        for (Path p : new Path[] {Path.of("..", "testdata"), Path.of("testdata")}) {
            if (Files.isDirectory(p.resolve("tiny-llama"))) {
                return p.normalize();
            }
        }
        throw new IllegalStateException("fixtures not found: no testdata/ in " + Path.of("").toAbsolutePath()
                + " or its parent; set -Dferry.fixtures");
    }

    public static Path model(String name) {
        return dir().resolve(name);
    }
}
