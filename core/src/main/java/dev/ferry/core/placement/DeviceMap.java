package dev.ferry.core.placement;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.Device;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where each block of a model lives: module name (or {@code ""} for the whole model) → device, in
 * Accelerate's form. A module not named is covered by its longest named prefix.
 */
public record DeviceMap(Map<String, Device> entries) {

    /**
     * Created on first JSON use: an ObjectMapper costs ~250 ms of class loading, which planning never needs.
     * Strict as the weights formats: a duplicate key (which would silently keep the last device) and text after
     * the map are errors.
     */
    private static final class Json {
        static final ObjectMapper MAPPER = new ObjectMapper()
                .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    }

    public DeviceMap {
        entries = Collections.unmodifiableMap(new LinkedHashMap<>(entries));
    }

    public static DeviceMap of(Map<String, Device> entries) {
        return new DeviceMap(entries);
    }

    /** The whole model on one device. */
    public static DeviceMap single(Device device) {
        return new DeviceMap(Map.of("", device));
    }

    /** Parses Accelerate's JSON form: {@code {"model.embed_tokens": 0, "model.layers.3": "cpu", ...}}. */
    public static DeviceMap parseJson(String json) {
        JsonNode node;
        try {
            node = Json.MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("device map is not valid JSON: " + e.getOriginalMessage()
                    + where(e.getLocation()));
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException("a device map is a JSON object of module name → device, got: " + json);
        }
        LinkedHashMap<String, Device> map = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode v = e.getValue();
            if (!v.isInt() && !v.isTextual()) {
                throw new IllegalArgumentException("device map entry '" + e.getKey() + "': expected an accelerator "
                        + "index, \"cpu\" or \"disk\", got " + v);
            }
            try {
                map.put(e.getKey(), Device.parse(v.asText()));
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("device map entry '" + e.getKey() + "': " + ex.getMessage(), ex);
            }
        }
        return new DeviceMap(map);
    }

    /** {@code " (line 1, column 12)"}: where the parser stopped, so a duplicate or trailing text is easy to find. */
    private static String where(JsonLocation at) {
        return at == null || at.getLineNr() < 0 ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
    }

    public static DeviceMap readJson(Path file) {
        String why = dev.ferry.core.io.RegularFiles.problem(file);
        if (why != null && Files.exists(file)) {
            throw new IllegalArgumentException("device map " + file + " " + why);
        }
        try {
            return parseJson(Files.readString(file));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read device map " + file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** Accelerate's JSON form (indices as numbers, {@code "cpu"}, {@code "disk"}). */
    public String toJson() {
        ObjectNode o = Json.MAPPER.createObjectNode();
        entries.forEach((k, d) -> {
            if (d.isAccelerator()) {
                o.put(k, d.index());
            } else {
                o.put(k, d.toString());
            }
        });
        try {
            return Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The device of a module or tensor name: its longest named prefix; {@code null} when none covers it. */
    public Device deviceOf(String name) {
        String n = name;
        while (true) {
            Device d = entries.get(n);
            if (d != null) {
                return d;
            }
            if (n.isEmpty()) {
                return null;
            }
            int dot = n.lastIndexOf('.');
            n = dot < 0 ? "" : n.substring(0, dot);
        }
    }

    /** The key covering {@code name} (longest named prefix), or {@code null}. */
    public String keyOf(String name) {
        String n = name;
        while (true) {
            if (entries.containsKey(n)) {
                return n;
            }
            if (n.isEmpty()) {
                return null;
            }
            int dot = n.lastIndexOf('.');
            n = dot < 0 ? "" : n.substring(0, dot);
        }
    }

    /**
     * The main (execution) device, as Accelerate chooses it: the first accelerator among the values, else
     * the CPU.
     */
    public Device mainDevice() {
        return entries.values().stream().filter(Device::isAccelerator).findFirst().orElse(Device.cpu());
    }

    /**
     * Where a block stored on {@code storage} executes: an accelerator runs its own blocks; CPU- and
     * disk-stored blocks run on the {@link #mainDevice()} (so with no accelerator, CPU blocks are resident).
     */
    public Device executionDevice(Device storage) {
        return storage.isAccelerator() ? storage : mainDevice();
    }

    /** Whether a block stored on {@code storage} is offloaded: streamed to its execution device per forward. */
    public boolean isOffloaded(Device storage) {
        return !executionDevice(storage).equals(storage);
    }

    public Set<Device> devices() {
        return new LinkedHashSet<>(entries.values());
    }

    /**
     * Checks this map against a model and returns it with no key below another: a key that has named
     * descendants is replaced by its children (recursively), each child keeping the longest prefix's device.
     *
     * @throws IllegalArgumentException naming the keys that match no module, or the tensors no key covers
     */
    public DeviceMap resolve(Module root) {
        List<String> unknown = new ArrayList<>();
        // keys in another transformers version's spelling (block_sparse_moe for mlp) become the tree's names
        LinkedHashMap<String, Device> canonical = new LinkedHashMap<>();
        Map<String, String> spelledAs = new LinkedHashMap<>();
        for (Map.Entry<String, Device> e : entries.entrySet()) {
            Module m = root.find(e.getKey());
            if (m == null) {
                unknown.add(e.getKey() + expertsHint(root, e.getKey()));
                continue;
            }
            String previous = spelledAs.put(m.name(), e.getKey());
            if (previous != null) {
                throw new IllegalArgumentException("device map keys '" + previous + "' and '" + e.getKey()
                        + "' name one module, '" + m.name() + "'; keep one");
            }
            canonical.put(m.name(), e.getValue());
        }
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("device map names " + unknown.size() + " module(s) the model lacks: "
                    + dev.ferry.core.text.Listing.cut(unknown) + " (module names look like " + exampleNames(root) + ")");
        }
        return canonical.keySet().equals(entries.keySet()) ? expandAll(root) : new DeviceMap(canonical).expandAll(root);
    }

    /** For a key naming an expert a layer does not have: {@code " (its experts are 0..7)"}; else nothing. */
    private static String expertsHint(Module root, String key) {
        int dot = key.lastIndexOf('.');
        Module holder = dot < 0 ? null : root.find(key.substring(0, dot));
        if (holder instanceof dev.ferry.core.module.RoutedExperts && key.substring(dot + 1).matches("-?\\d+")) {
            return " (expert index out of range: '" + holder.name() + "' has experts 0.." + (holder.children().size() - 1)
                    + ")";
        }
        return "";
    }

    private DeviceMap expandAll(Module root) {
        LinkedHashMap<String, Device> out = new LinkedHashMap<>();
        List<String> uncovered = new ArrayList<>();
        expand(root, null, out, uncovered);
        if (!uncovered.isEmpty()) {
            throw new IllegalArgumentException("device map gives no device to " + uncovered.size() + " tensor(s): "
                    + dev.ferry.core.text.Listing.cut(uncovered)
                    + "; name their modules or a parent in the map");
        }
        return new DeviceMap(out);
    }

    private void expand(Module m, Device inherited, Map<String, Device> out, List<String> uncovered) {
        Device own = entries.get(m.name());
        Device d = own != null ? own : inherited;
        if (d != null && !hasKeyBelow(m)) {
            out.put(m.name(), d);
            return;
        }
        if (d == null && !hasKeyBelow(m)) {
            m.namedTensors(true, true, false).keySet()
                    .forEach(t -> uncovered.add(m.name().isEmpty() ? t : m.name() + "." + t));
            return;
        }
        // keys below: this module's own tensors need a device of their own
        if (m.ownsTensors()) {
            if (d == null) {
                m.ownTensors().keySet().forEach(t -> uncovered.add(m.name().isEmpty() ? t : m.name() + "." + t));
            } else {
                throw new IllegalArgumentException("device map splits module '" + m.name() + "' (" + m.className()
                        + "), which owns tensors " + m.ownTensors().keySet() + " itself: map its children and it as "
                        + "one, or map each child");
            }
        }
        for (Module c : m.children().values()) {
            expand(c, d, out, uncovered);
        }
    }

    private boolean hasKeyBelow(Module m) {
        String prefix = m.name().isEmpty() ? "" : m.name() + ".";
        for (String k : entries.keySet()) {
            if (k.length() > prefix.length() && k.startsWith(prefix) || (prefix.isEmpty() && !k.isEmpty())) {
                return true;
            }
        }
        return false;
    }

    /**
     * Merges keys that share a device under their common parent, as Accelerate's {@code clean_device_map}:
     * {@code {"a.0": 0, "a.1": 0}} becomes {@code {"a": 0}}.
     */
    public DeviceMap clean() {
        LinkedHashMap<String, Device> map = new LinkedHashMap<>(entries);
        clean(map, "");
        return new DeviceMap(map);
    }

    private static void clean(LinkedHashMap<String, Device> map, String module) {
        String prefix = module.isEmpty() ? "" : module + ".";
        List<String> under = new ArrayList<>();
        Set<Device> values = new LinkedHashSet<>();
        for (Map.Entry<String, Device> e : map.entrySet()) {
            if (e.getKey().startsWith(prefix) || e.getKey().equals(module)) {
                under.add(e.getKey());
                values.add(e.getValue());
            }
        }
        if (values.size() == 1 && under.size() > 1) {
            Device d = values.iterator().next();
            // keep the merged key where its first member stood
            LinkedHashMap<String, Device> rebuilt = new LinkedHashMap<>();
            boolean placed = false;
            for (Map.Entry<String, Device> e : map.entrySet()) {
                if (under.contains(e.getKey())) {
                    if (!placed) {
                        rebuilt.put(module, d);
                        placed = true;
                    }
                } else {
                    rebuilt.put(e.getKey(), e.getValue());
                }
            }
            map.clear();
            map.putAll(rebuilt);
            return;
        }
        int depth = module.isEmpty() ? 1 : module.split("\\.").length + 1;
        Set<String> childPrefixes = new LinkedHashSet<>();
        for (String k : new ArrayList<>(map.keySet())) {
            if (k.startsWith(prefix) && k.length() > module.length() && !k.equals(module)) {
                String[] parts = k.split("\\.");
                childPrefixes.add(String.join(".", java.util.Arrays.copyOf(parts, Math.min(depth, parts.length))));
            }
        }
        for (String child : childPrefixes) {
            clean(map, child);
        }
    }

    private static List<String> exampleNames(Module root) {
        List<String> names = new ArrayList<>();
        for (Module c : root.children().values()) {
            names.add(c.name());
            for (Module g : c.children().values()) {
                if (names.size() < 5) {
                    names.add(g.name());
                }
            }
            if (names.size() >= 5) {
                break;
            }
        }
        return names;
    }

    @Override
    public String toString() {
        return entries.toString();
    }
}
