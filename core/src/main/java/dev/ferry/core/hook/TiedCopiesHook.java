package dev.ferry.core.hook;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * One copy of a tied tensor per execution device, as Accelerate keeps when tied modules are mapped to different
 * accelerators (GPT-2's {@code transformer.wte} on gpu0 and {@code lm_head} on gpu1): {@code init} copies each tied
 * tensor, resident on its home device, to {@code device}; around each forward of the module the copy stands in
 * for the home tensor, which is put back after. The copies live as long as the hook; {@code detach} frees them.
 */
public final class TiedCopiesHook implements ModelHook {

    private final Device device;
    private final List<TensorSlot> slots;
    private final Map<TensorSlot, Tensor> copies = new IdentityHashMap<>();
    private final Deque<Map<TensorSlot, Tensor>> homes = new ArrayDeque<>();

    public TiedCopiesHook(Device device, List<TensorSlot> slots) {
        this.device = device;
        this.slots = List.copyOf(slots);
    }

    public Device device() {
        return device;
    }

    @Override
    public void init(Module module) {
        for (TensorSlot slot : slots) {
            if (!slot.isMaterialised()) {
                throw new IllegalStateException("tied tensor " + slot + " of '" + module.name()
                        + "' is not resident anywhere: one module of a tied group must keep it resident to copy it to "
                        + device);
            }
            Tensor copy = slot.value().to(device);
            copies.put(slot, copy == slot.value() ? null : copy);
        }
    }

    @Override
    public Object[] preForward(Module module, Object[] args) {
        Map<TensorSlot, Tensor> home = new IdentityHashMap<>();
        copies.forEach((slot, copy) -> {
            if (copy != null) {
                home.put(slot, slot.take());
                slot.set(copy);
            }
        });
        homes.push(home);
        return args;
    }

    @Override
    public Object postForward(Module module, Object output) {
        putHomesBack();
        return output;
    }

    /** The forward threw: the home tensors go back all the same, or the next forward would take a copy for one. */
    @Override
    public void abortForward(Module module) {
        putHomesBack();
    }

    private void putHomesBack() {
        Map<TensorSlot, Tensor> home = homes.pop();
        home.forEach((slot, value) -> {
            slot.take(); // the copy stays owned by this hook
            slot.set(value);
        });
    }

    @Override
    public void detach(Module module) {
        copies.values().forEach(t -> {
            if (t != null) {
                t.close();
            }
        });
        copies.clear();
    }

    @Override
    public String toString() {
        return "TiedCopiesHook(" + device + ", " + slots.size() + " tensors)";
    }
}
