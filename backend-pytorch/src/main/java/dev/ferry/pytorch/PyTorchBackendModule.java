package dev.ferry.pytorch;

import com.google.inject.AbstractModule;
import dev.ferry.core.inject.BackendModule;
import com.google.inject.Provides;
import com.google.inject.Singleton;
import dev.ferry.core.tensor.TensorBackend;

/** Guice wiring of the PyTorch (DJL) backend: install it to make {@link TensorBackend} this backend. */
public final class PyTorchBackendModule extends AbstractModule implements BackendModule {

    @Override
    public String backendName() {
        return "pytorch";
    }

    @Override
    protected void configure() {
        bind(TensorBackend.class).to(DjlBackend.class);
        bind(dev.ferry.core.load.ModelLoader.class).to(PyTorchModelLoader.class);
    }

    @Provides
    @Singleton
    DjlBackend djlBackend() {
        return new DjlBackend();
    }
}
