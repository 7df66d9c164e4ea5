package dev.ferry.pytorch;

import ai.djl.engine.Engine;
import dev.ferry.core.load.BackendUnavailableException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Locale;
import java.util.Properties;

/**
 * Finding libtorch. {@code ferry-backend-pytorch} brings DJL's engine and JNI but no native library (the application
 * picks CPU or CUDA, as with DJL); without one, DJL tries to download libtorch, which fails offline with a network
 * error deep inside. This class turns that into one sentence naming the Maven coordinates to add.
 */
final class LibTorch {

    private LibTorch() {
    }

    static Engine engine(String name) {
        try {
            return Engine.getEngine(name);
        } catch (RuntimeException | LinkageError e) {
            throw new BackendUnavailableException(missingMessage(rootMessage(e)), e);
        }
    }

    /** What to add, for this platform. */
    static String missingMessage(String cause) {
        String version = versions().getProperty("libtorch.version", "2.7.1");
        return "the PyTorch backend found no libtorch native library (" + cause + "): add "
                + "ai.djl.pytorch:pytorch-native-cpu:" + version + ":" + classifier() + " as a runtime dependency "
                + "(Maven: <classifier>" + classifier() + "</classifier>, <scope>runtime</scope>), or a CUDA build "
                + "(ai.djl.pytorch:pytorch-native-cu<version>), or point PYTORCH_LIBRARY_PATH at a libtorch folder "
                + "(README: Choosing the natives)";
    }

    /** DJL's classifier of this platform: linux-x86_64, linux-aarch64, osx-aarch64, win-x86_64. */
    static String classifier() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String o = os.startsWith("mac") ? "osx" : os.startsWith("win") ? "win" : "linux";
        String a = arch.equals("amd64") || arch.equals("x86_64") ? "x86_64" : arch.equals("aarch64")
                || arch.equals("arm64") ? "aarch64" : arch;
        return o + "-" + a;
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getClass().getSimpleName() + (t.getMessage() == null ? "" : ": " + t.getMessage());
    }

    private static Properties versions() {
        Properties p = new Properties();
        try (InputStream in = LibTorch.class.getResourceAsStream("libtorch.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            // the default version above
        }
        return p;
    }
}
