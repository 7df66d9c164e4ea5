package dev.ferry.core.inject;

import com.google.inject.Module;
import java.util.List;
import java.util.ServiceLoader;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * A backend's Guice module, found on the class path the way DJL finds engines: each backend jar lists its
 * module in {@code META-INF/services/dev.ferry.core.inject.BackendModule}. Installing it binds
 * {@link dev.ferry.core.tensor.TensorBackend} (and whatever else the backend offers).
 */
public interface BackendModule extends Module {

    /** The name users choose it by ({@code pytorch}, {@code onnx}). */
    String backendName();

    /** Every backend on the class path, by name. */
    static TreeMap<String, BackendModule> discover() {
        TreeMap<String, BackendModule> out = new TreeMap<>();
        for (BackendModule m : ServiceLoader.load(BackendModule.class)) {
            BackendModule previous = out.put(m.backendName(), m);
            if (previous != null) {
                throw new IllegalStateException("two backends named '" + m.backendName() + "' on the class path: "
                        + previous.getClass().getName() + " and " + m.getClass().getName());
            }
        }
        return out;
    }

    /** The backend named {@code name}; an error listing the backends found when there is none. */
    static BackendModule named(String name) {
        TreeMap<String, BackendModule> all = discover();
        BackendModule m = all.get(name);
        if (m == null) {
            throw new IllegalArgumentException("no backend '" + name + "' on the class path; found "
                    + (all.isEmpty() ? "none" : all.keySet().stream().collect(Collectors.joining(", "))));
        }
        return m;
    }

    /** Names of the backends on the class path. */
    static List<String> names() {
        return List.copyOf(discover().keySet());
    }
}
