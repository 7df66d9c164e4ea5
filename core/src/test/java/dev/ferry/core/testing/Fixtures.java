package dev.ferry.core.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the shared fixtures are: {@code -Dferry.fixtures}, else {@code ../shared/fixtures} from the project. */
public final class Fixtures {

    private Fixtures() {
    }

    public static Path dir() {
        String prop = System.getProperty("ferry.fixtures");
        Path p = prop != null ? Path.of(prop) : Path.of("..", "shared", "fixtures");
        if (!Files.isDirectory(p)) {
            p = Path.of("..", "..", "shared", "fixtures");
        }
        if (!Files.isDirectory(p)) {
            throw new IllegalStateException("fixtures not found: set -Dferry.fixtures (tried " + p.toAbsolutePath() + ")");
        }
        return p.normalize();
    }

    public static Path model(String name) {
        return dir().resolve(name);
    }
}
