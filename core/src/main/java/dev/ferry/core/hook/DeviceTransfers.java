package dev.ferry.core.hook;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Moves the tensors inside a forward's arguments or output (a tensor, or lists, maps and arrays of them) to a
 * device, as Accelerate's {@code send_to_device}. Other objects pass through unchanged. Every tensor this
 * creates is recorded so that its owner (the hook) can free it.
 */
final class DeviceTransfers {

    private DeviceTransfers() {
    }

    /** Map entries under {@code skipKeys} are not moved. {@code created} receives every new tensor. */
    static Object send(Object value, Device device, Set<String> skipKeys, List<Tensor> created) {
        if (value instanceof Tensor t) {
            Tensor moved = t.to(device);
            if (moved != t) {
                created.add(moved);
            }
            return moved;
        }
        if (value instanceof Object[] array) {
            Object[] out = new Object[array.length];
            for (int i = 0; i < array.length; i++) {
                out[i] = send(array[i], device, skipKeys, created);
            }
            return out;
        }
        if (value instanceof List<?> list) {
            List<Object> out = new ArrayList<>(list.size());
            for (Object o : list) {
                out.add(send(o, device, skipKeys, created));
            }
            return Collections.unmodifiableList(out);
        }
        if (value instanceof Map<?, ?> map) {
            Map<Object, Object> out = new LinkedHashMap<>();
            map.forEach((k, v) -> out.put(k, skipKeys.contains(String.valueOf(k)) ? v
                    : send(v, device, skipKeys, created)));
            return Collections.unmodifiableMap(out);
        }
        return value;
    }

    /** The device of the first tensor found, as Accelerate's {@code find_device}; {@code null} if none. */
    static Device find(Object value) {
        if (value instanceof Tensor t) {
            return t.device();
        }
        Iterable<?> items = null;
        if (value instanceof Object[] array) {
            items = java.util.Arrays.asList(array);
        } else if (value instanceof List<?> list) {
            items = list;
        } else if (value instanceof Map<?, ?> map) {
            items = map.values();
        }
        if (items != null) {
            for (Object o : items) {
                Device d = find(o);
                if (d != null) {
                    return d;
                }
            }
        }
        return null;
    }

    /** Every tensor reachable in {@code value}, by identity. */
    static Set<Tensor> tensorsIn(Object value) {
        Set<Tensor> out = Collections.newSetFromMap(new IdentityHashMap<>());
        collect(value, out);
        return out;
    }

    private static void collect(Object value, Set<Tensor> out) {
        if (value instanceof Tensor t) {
            out.add(t);
        } else if (value instanceof Object[] array) {
            for (Object o : array) {
                collect(o, out);
            }
        } else if (value instanceof List<?> list) {
            list.forEach(o -> collect(o, out));
        } else if (value instanceof Map<?, ?> map) {
            map.values().forEach(o -> collect(o, out));
        }
    }

    /** Closes the temporaries a hook made, except those the forward handed on in its output. */
    static void closeExcept(List<Tensor> temporaries, Object output) {
        if (temporaries.isEmpty()) {
            return;
        }
        Set<Tensor> kept = tensorsIn(output);
        for (Tensor t : temporaries) {
            if (!kept.contains(t)) {
                t.close();
            }
        }
    }
}
