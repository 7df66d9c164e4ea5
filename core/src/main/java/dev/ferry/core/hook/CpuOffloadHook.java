package dev.ferry.core.hook;

import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Model-level offload for pipelines of models, as Accelerate's {@code cpu_offload_with_hook}: the whole model
 * waits in CPU memory and moves to the execution device when called; calling it first sends the previous
 * model of the chain back to the CPU. {@link #offload()} sends this one back explicitly.
 */
public final class CpuOffloadHook implements ModelHook {

    private final Device executionDevice;
    private final CpuOffloadHook previous;
    private Module module;
    private List<Tensor> temporaries = List.of();

    private CpuOffloadHook(Device executionDevice, CpuOffloadHook previous) {
        this.executionDevice = executionDevice;
        this.previous = previous;
    }

    /** Attaches to {@code model}; pass the hook of the model that runs before it (or {@code null}). */
    public static CpuOffloadHook attach(Module model, Device executionDevice, CpuOffloadHook previous) {
        CpuOffloadHook hook = new CpuOffloadHook(executionDevice, previous);
        Hooks.add(model, hook, true);
        return hook;
    }

    @Override
    public void init(Module m) {
        this.module = m;
        m.to(Device.cpu());
    }

    @Override
    public Object[] preForward(Module m, Object[] args) {
        if (previous != null) {
            previous.offload();
        }
        m.to(executionDevice);
        temporaries = new ArrayList<>(0);
        return (Object[]) DeviceTransfers.send(args, executionDevice, Set.of(), temporaries);
    }

    @Override
    public Object postForward(Module m, Object output) {
        DeviceTransfers.closeExcept(temporaries, output);
        temporaries = List.of();
        return output;
    }

    /** Sends the model back to CPU memory. */
    public void offload() {
        if (module != null) {
            module.to(Device.cpu());
        }
    }

    /** Removes the hook, leaving the model in CPU memory. */
    public void remove() {
        if (module != null) {
            Hooks.remove(module, false);
        }
    }
}
