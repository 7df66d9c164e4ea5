package dev.ferry.core.dispatch;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.Device;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * The plan of a dispatch, module by module, in tree order (root first): where each module executes, where
 * its weights are stored, whether it carries a hook and why. Computed without touching any device.
 */
public record DispatchReport(Device mainDevice, DeviceMap deviceMap, List<Entry> modules, Memory memory,
                             List<String> keysWithoutModules) {

    public DispatchReport(Device mainDevice, DeviceMap deviceMap, List<Entry> modules, Memory memory) {
        this(mainDevice, deviceMap, modules, memory, List.of());
    }

    /**
     * Where the bytes go: kept resident per device, offloaded per storage (streamed to the execution device at
     * every forward), and the largest unit streamed at once ({@code null} when nothing is offloaded): with
     * prefetch, the execution device needs room for it and the blocks fetched ahead.
     */
    public record Memory(Map<Device, Long> resident, Map<Device, Long> offloaded, String largestStreamedUnit,
                         long largestStreamedBytes, Routed routed, long lookupTableBytes) {
        public Memory {
            resident = Map.copyOf(resident);
            offloaded = Map.copyOf(offloaded);
        }

        public Memory(Map<Device, Long> resident, Map<Device, Long> offloaded, String largestStreamedUnit,
                      long largestStreamedBytes) {
            this(resident, offloaded, largestStreamedUnit, largestStreamedBytes, null, 0);
        }

        /**
         * Bytes streamed per forward for one token: the offloaded blocks (streamed whole every forward) plus, per
         * layer, the routed experts a token can select at most ({@code experts per token × the largest of them});
         * what a decode step streams at most, leaving out the rows offloaded lookup tables send (a row per token).
         */
        public long streamedBytesPerTokenAtMost() {
            return blockBytesPerForward() + (routed == null ? 0 : routed.bytesPerTokenAtMost());
        }

        /**
         * Bytes of the offloaded units that are neither routed experts nor lookup tables (which send only the rows
         * their ids name): streamed whole at every forward.
         */
        public long blockBytesPerForward() {
            long all = offloaded.values().stream().mapToLong(Long::longValue).sum();
            return all - (routed == null ? 0 : routed.storedBytes()) - lookupTableBytes;
        }

        /** {@code resident gpu0 561.81 KiB; offloaded cpu 144.50 KiB (largest unit streamed: model.layers.3, ...)}. */
        public String describeAll() {
            String s = describe();
            if (lookupTableBytes > 0) {
                s += System.lineSeparator() + "offloaded lookup tables (embeddings) "
                        + SizeStrings.format(lookupTableBytes) + ", streamed by the rows their ids name, not whole";
            }
            if (routed == null) {
                return s;
            }
            return s + System.lineSeparator() + routed.describe() + "; streamed per token at most "
                    + SizeStrings.format(streamedBytesPerTokenAtMost()) + " (" + streamedBytesPerTokenAtMost()
                    + " bytes)";
        }

        /** {@code resident gpu0 561.81 KiB; offloaded cpu 144.50 KiB (largest unit streamed: model.layers.3, ...)}. */
        public String describe() {
            StringBuilder sb = new StringBuilder("resident");
            appendBytes(sb, resident);
            sb.append("; offloaded, streamed per forward");
            appendBytes(sb, offloaded);
            if (largestStreamedUnit != null) {
                sb.append(" (largest unit streamed at once: ")
                        .append(largestStreamedUnit.isEmpty() ? "(root)" : largestStreamedUnit).append(", ")
                        .append(SizeStrings.format(largestStreamedBytes)).append(')');
            }
            return sb.toString();
        }

        private static void appendBytes(StringBuilder sb, Map<Device, Long> bytes) {
            if (bytes.isEmpty()) {
                sb.append(" none");
                return;
            }
            new java.util.TreeMap<>(bytes).forEach((d, b) -> sb.append(' ').append(d).append(' ')
                    .append(SizeStrings.format(b)).append(','));
            sb.setLength(sb.length() - 1);
        }
    }

    /**
     * Routed experts stored away from their execution device.
     *
     * @param experts        how many expert units
     * @param layers         layers holding them
     * @param storedBytes    their bytes, together
     * @param bytesPerTokenAtMost per layer, experts-per-token × its largest routed expert, summed: what one token's
     *                       forward fetches at most
     */
    public record Routed(int experts, int layers, long storedBytes, long bytesPerTokenAtMost) {
        public String describe() {
            return "routed experts apart: " + experts + " in " + layers + " layer(s), " + SizeStrings.format(storedBytes)
                    + ", fetched as routed (at most " + SizeStrings.format(bytesPerTokenAtMost) + " per token)";
        }
    }

    /** Why a module is (not) hooked. */
    public enum Reason {
        IN_DEVICE_MAP("in device map"),
        ROOT("root: moves inputs and outputs"),
        OFFLOADED_TENSORS("loads its offloaded tensors"),
        PRELOAD_UNIT("preload unit"),
        ROUTED_EXPERT("routed expert: fetched when selected"),
        INSIDE_UNIT("inside unit"),
        EXPERTS_APART("experts are units of their own"),
        EXECUTION_DEVICE("execution-device hook"),
        BELOW_PRELOAD_CLASS("below preload class"),
        OWNS_NO_TENSOR("owns no tensor"),
        ABOVE_BLOCKS("above the mapped blocks");

        private final String text;

        Reason(String text) {
            this.text = text;
        }

        public String text() {
            return text;
        }
    }

    /**
     * One module. {@code executionDevice} and {@code storage} are {@code null} for modules above the mapped
     * blocks; {@code hook} is what the dispatcher attaches ({@code null} when not hooked); {@code detail}
     * completes the reason (the preload class).
     */
    public record Entry(String name, String className, Device executionDevice, Device storage, HookSpec hook,
                        Reason reason, String detail) {

        public boolean hooked() {
            return hook != null;
        }

        public String reasonText() {
            return detail == null ? reason.text() : reason.text() + " " + detail;
        }
    }

    /** The hook a module gets: an align-devices hook configured as Accelerate's, without the tensors. */
    public record HookSpec(Device executionDevice, boolean offload, boolean placeSubmodules, boolean ioSameDevice) {
    }

    public DispatchReport {
        modules = List.copyOf(modules);
        keysWithoutModules = keysWithoutModules == null ? List.of() : List.copyOf(keysWithoutModules);
    }

    /** The same report noting device-map keys that name modules the model has no trace of. */
    public DispatchReport withKeysWithoutModules(List<String> keys) {
        return new DispatchReport(mainDevice, deviceMap, modules, memory, keys);
    }

    public long hookedCount() {
        return modules.stream().filter(Entry::hooked).count();
    }

    public List<String> hookedModules() {
        return modules.stream().filter(Entry::hooked).map(Entry::name).toList();
    }

    public Entry entry(String name) {
        return byName().computeIfAbsent(name, n -> {
            throw new IllegalArgumentException("no module '" + n + "' in the dispatch report");
        });
    }

    private Map<String, Entry> byName() {
        return modules.stream().collect(Collectors.toMap(Entry::name, Function.identity(), (a, b) -> a,
                java.util.LinkedHashMap::new));
    }

    /** {@code {"modules": [{"name", "class", "device", "storage", "hooked", "reason"}, ...]}}. */
    public String toJson() {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        ArrayNode list = root.putArray("modules");
        for (Entry e : modules) {
            ObjectNode o = list.addObject();
            o.put("name", e.name());
            o.put("class", e.className());
            putDevice(o, "device", e.executionDevice());
            putDevice(o, "storage", e.storage());
            o.put("hooked", e.hooked());
            o.put("reason", e.reasonText());
        }
        if (memory != null && memory.routed() != null) {
            ObjectNode r = root.putObject("routed_experts");
            r.put("experts", memory.routed().experts());
            r.put("layers", memory.routed().layers());
            r.put("stored_bytes", memory.routed().storedBytes());
            r.put("bytes_per_token_at_most", memory.routed().bytesPerTokenAtMost());
            r.put("rule", PreloadRule.moeSentence());
            root.put("streamed_bytes_per_token_at_most", memory.streamedBytesPerTokenAtMost());
        }
        if (memory != null && memory.lookupTableBytes() > 0) {
            // offloaded embeddings: stored here, but each forward streams only the rows its ids name
            root.put("offloaded_lookup_table_bytes", memory.lookupTableBytes());
        }
        if (!keysWithoutModules.isEmpty()) {
            ArrayNode keys = root.putArray("map_keys_without_ops");
            keysWithoutModules.forEach(keys::add);
        }
        try {
            return json.writerWithDefaultPrettyPrinter().writeValueAsString(root);
        } catch (JsonProcessingException ex) {
            throw new IllegalStateException(ex);
        }
    }

    private static void putDevice(ObjectNode o, String field, Device d) {
        if (d == null) {
            o.putNull(field);
        } else if (d.isAccelerator()) {
            o.put(field, d.index());
        } else {
            o.put(field, d.toString());
        }
    }

    /** A fixed-width table, one module per line, indented by depth. */
    public String toTable() {
        int nameWidth = "module".length();
        int classWidth = "class".length();
        for (Entry e : modules) {
            nameWidth = Math.max(nameWidth, displayName(e).length());
            classWidth = Math.max(classWidth, e.className().length());
        }
        String fmt = "%-" + nameWidth + "s  %-" + classWidth + "s  %-6s  %-7s  %-6s  %s%n";
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(fmt, "module", "class", "device", "storage", "hooked", "reason"));
        for (Entry e : modules) {
            sb.append(String.format(fmt, displayName(e), e.className(), str(e.executionDevice()), str(e.storage()),
                    e.hooked() ? "yes" : "no", e.reasonText()));
        }
        sb.append(String.format("%d of %d modules hooked; main device %s%n", hookedCount(), modules.size(),
                mainDevice));
        sb.append(memory.describeAll()).append(System.lineSeparator());
        if (memory.routed() != null) {
            sb.append(PreloadRule.moeSentence()).append(System.lineSeparator());
        }
        if (!keysWithoutModules.isEmpty()) {
            sb.append("device map keys without ops in the model (accepted, nothing to place): ")
                    .append(keysWithoutModules).append(System.lineSeparator());
        }
        return sb.toString();
    }

    private static String displayName(Entry e) {
        if (e.name().isEmpty()) {
            return "(root)";
        }
        int depth = (int) e.name().chars().filter(c -> c == '.').count() + 1;
        String local = e.name().substring(e.name().lastIndexOf('.') + 1);
        return "  ".repeat(depth) + local;
    }

    private static String str(Device d) {
        return d == null ? "-" : d.toString();
    }
}
