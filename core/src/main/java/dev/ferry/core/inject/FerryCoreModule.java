package dev.ferry.core.inject;

import com.google.inject.AbstractModule;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.placement.DevicePlanner;

/**
 * Binds the core services. A backend's module (PyTorch, ONNX Runtime) binds the
 * {@link dev.ferry.core.tensor.TensorBackend} they run on; install both.
 */
public final class FerryCoreModule extends AbstractModule {

    @Override
    protected void configure() {
        bind(DevicePlanner.class);
        bind(Dispatcher.class);
        bind(CheckpointDispatcher.class);
    }
}
