package dev.ferry.cli;

import com.google.inject.Guice;
import com.google.inject.Injector;
import com.google.inject.Module;
import dev.ferry.core.inject.BackendModule;
import dev.ferry.core.inject.FerryCoreModule;

/** Guice wiring of the backend chosen with {@code --backend}: the core module plus that backend's module. */
final class Backends {

    /** {@code --backend}. */
    enum Name { pytorch, onnx }

    private Backends() {
    }

    static Injector injector(Name name) {
        return Guice.createInjector(new FerryCoreModule(), backendModule(name));
    }

    /** The backend's Guice module, as discovered on the class path (META-INF/services). */
    static Module backendModule(Name name) {
        return BackendModule.named(name.name());
    }
}
