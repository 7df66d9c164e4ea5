package dev.ferry.core.load;

/**
 * What a backend offers {@link Ferry}: loading a model folder dispatched under a {@link LoadRequest}. Each backend's
 * Guice module ({@link dev.ferry.core.inject.BackendModule}) binds it; users never call it directly.
 */
public interface ModelLoader {

    /**
     * Loads and dispatches; the returned model owns what the load made (and the injector's backend singletons,
     * since {@link Ferry} makes one injector per model).
     *
     * @throws IllegalArgumentException for a request the model cannot take (a device-map key naming no module, an
     *                                  option the backend does not support), before any weight is read
     */
    DispatchedModel load(LoadRequest request);
}
