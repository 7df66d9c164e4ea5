package dev.ferry.core.placement;

import dev.ferry.core.tensor.Device;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The result of {@link DevicePlanner#plan}.
 *
 * @param deviceMap      the map, cleaned (keys sharing a device merged under their parent, as Accelerate's
 *                       {@code clean_device_map}), keys in tree order
 * @param bytesPerDevice bytes stored on each device the map uses, in device order (accelerators, cpu, disk);
 *                       they sum to {@link #totalBytes}
 * @param budgets        the budgets the fill used, in device order: the request's, or for the balanced strategies
 *                       the balanced ones ({@code disk} absent when unbounded)
 * @param reservedBytes  for each main device (the first accelerator, and the cpu) the fill moved past, the bytes it
 *                       kept free there for the largest block that could still be offloaded after it;
 *                       {@code bytesPerDevice + reservedBytes <= budgets} on every device
 * @param totalBytes     bytes of the whole model as planned (dtype applied, tied tensors once)
 * @param warnings       things worth telling the user that do not stop the plan
 */
public record DevicePlan(DeviceMap deviceMap, Map<Device, Long> bytesPerDevice, Map<Device, Long> budgets,
                         Map<Device, Long> reservedBytes, long totalBytes, List<String> warnings) {

    public DevicePlan {
        bytesPerDevice = Collections.unmodifiableMap(new LinkedHashMap<>(bytesPerDevice));
        budgets = Collections.unmodifiableMap(new LinkedHashMap<>(budgets));
        reservedBytes = Collections.unmodifiableMap(new LinkedHashMap<>(reservedBytes));
        warnings = List.copyOf(warnings);
    }

    /** A one-line-per-device summary: {@code gpu0  12.00 GiB of 80.00 GiB}. */
    public String summary() {
        return bytesPerDevice.entrySet().stream().map(e -> {
            Long budget = budgets.get(e.getKey());
            return String.format("%-5s %12s%s", e.getKey(), SizeStrings.format(e.getValue()),
                    budget == null ? "" : " of " + SizeStrings.format(budget));
        }).collect(Collectors.joining("\n"));
    }
}
