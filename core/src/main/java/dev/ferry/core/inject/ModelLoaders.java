package dev.ferry.core.inject;

import com.google.inject.CreationException;
import com.google.inject.Guice;
import com.google.inject.ProvisionException;
import dev.ferry.core.load.ModelLoader;

/**
 * The Guice wiring behind {@link dev.ferry.core.load.Ferry}: one injector of core's module and the named backend's
 * module ({@link BackendModule#named}) per model, so each model owns its backend's singletons. Kept in this package,
 * the only one of core that refers to Guice (which core declares optional: the backend jars bring it).
 */
public final class ModelLoaders {

    private ModelLoaders() {
    }

    /**
     * The {@link ModelLoader} of backend {@code name}, in a new injector. A Ferry exception thrown while the backend
     * is provided (no libtorch, say) comes out as itself, not wrapped in Guice's report.
     */
    public static ModelLoader forBackend(String name) {
        try {
            return Guice.createInjector(new FerryCoreModule(), BackendModule.named(name))
                    .getInstance(ModelLoader.class);
        } catch (ProvisionException | CreationException e) {
            throw unwrap(e);
        }
    }

    /** The Ferry exception inside a Guice exception (the first cause from a dev.ferry class), else {@code e}. */
    public static RuntimeException unwrap(RuntimeException e) {
        if (!(e instanceof ProvisionException) && !(e instanceof CreationException)) {
            return e;
        }
        for (Throwable t = e.getCause(); t != null && t != t.getCause(); t = t.getCause()) {
            if (t instanceof RuntimeException r && r.getClass().getName().startsWith("dev.ferry.")) {
                return r;
            }
        }
        return e;
    }
}
