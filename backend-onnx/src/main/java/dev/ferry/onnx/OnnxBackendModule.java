package dev.ferry.onnx;

import com.google.inject.AbstractModule;
import dev.ferry.core.inject.BackendModule;
import com.google.inject.Provides;
import com.google.inject.Singleton;
import dev.ferry.core.tensor.TensorBackend;
import java.util.Objects;

/**
 * Guice wiring of the ONNX Runtime backend: the core's {@link TensorBackend}, the device → execution provider
 * assignment, the options, and the {@link OnnxDispatcher} that loads and dispatches exported models.
 */
public final class OnnxBackendModule extends AbstractModule implements BackendModule {

    @Override
    public String backendName() {
        return "onnx";
    }

    private final OnnxOptions options;

    /** Accelerator {@code i} is CUDA on GPU {@code i} (probed when a plan uses it). */
    public OnnxBackendModule() {
        this(OnnxOptions.defaults());
    }

    public OnnxBackendModule(OnnxOptions options) {
        this.options = Objects.requireNonNull(options);
    }

    @Override
    protected void configure() {
        bind(OnnxOptions.class).toInstance(options);
        bind(OnnxDevices.class).toInstance(options.devices());
        bind(dev.ferry.core.load.ModelLoader.class).to(OnnxModelLoader.class);
    }

    @Provides
    @Singleton
    TensorBackend tensorBackend(OnnxDevices devices) {
        return new OnnxTensorBackend(devices);
    }

    @Provides
    @Singleton
    OnnxDispatcher dispatcher(OnnxOptions opts) {
        return new OnnxDispatcher(opts);
    }
}
