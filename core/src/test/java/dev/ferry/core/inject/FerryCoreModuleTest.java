package dev.ferry.core.inject;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.inject.AbstractModule;
import com.google.inject.Guice;
import com.google.inject.Injector;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.testing.TestBackend;
import dev.ferry.core.testing.TestLayers.ModelForTest;
import org.junit.jupiter.api.Test;

class FerryCoreModuleTest {

    @Test
    void coreServicesRunOnTheBackendABackendModuleBinds() {
        TestBackend backend = new TestBackend(1);
        Injector injector = Guice.createInjector(new FerryCoreModule(), new AbstractModule() {
            @Override
            protected void configure() {
                bind(TensorBackend.class).toInstance(backend);
            }
        });
        assertThat(injector.getInstance(CheckpointDispatcher.class)).isNotNull();
        assertThat(injector.getInstance(dev.ferry.core.placement.DevicePlanner.class)).isNotNull();
        ModelForTest model = new ModelForTest(backend, 3);
        injector.getInstance(Dispatcher.class).dispatch(model, DispatchOptions.of(DeviceMap.single(Device.accelerator(0))));
        assertThat(model.child("linear1").tensor("weight").device()).isEqualTo(Device.accelerator(0));
    }
}
