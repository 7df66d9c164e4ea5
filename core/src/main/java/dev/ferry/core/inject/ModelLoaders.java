package dev.ferry.core.inject;

import com.google.inject.Guice;
import dev.ferry.core.load.ModelLoader;

/**
 * The Guice wiring behind {@link dev.ferry.core.load.Ferry}: one injector of core's module and the named backend's
 * module ({@link BackendModule#named}) per model, so each model owns its backend's singletons. Kept in this package,
 * the only one of core that refers to Guice (which core declares optional: the backend jars bring it).
 */
public final class ModelLoaders {

    private ModelLoaders() {
    }

    /** The {@link ModelLoader} of backend {@code name}, in a new injector. */
    public static ModelLoader forBackend(String name) {
        return Guice.createInjector(new FerryCoreModule(), BackendModule.named(name)).getInstance(ModelLoader.class);
    }
}
