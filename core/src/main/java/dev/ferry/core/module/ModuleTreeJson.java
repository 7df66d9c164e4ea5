package dev.ferry.core.module;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;

/**
 * Builds a planning-only module tree (no forward, tensors on meta) from a {@code module_tree.json}: a list
 * of modules in {@code named_modules()} order, each with {@code name}, {@code class}, {@code params} and
 * {@code buffers} ({@code {"w": {"shape": [..], "dtype": "float32", "persistent": false}}}).
 */
public final class ModuleTreeJson {

    private ModuleTreeJson() {
    }

    public static Module read(Path file) {
        String why = dev.ferry.core.io.RegularFiles.problem(file);
        if (why != null && java.nio.file.Files.exists(file)) {
            throw new IllegalArgumentException("module tree " + file + " " + why);
        }
        try {
            return parse(new ObjectMapper().readTree(file.toFile()), file.toString());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read module tree " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * @param tiedGroups lists of full parameter names that share one tensor (e.g. {@code lm_head.weight} and
     *                   {@code transformer.wte.weight}); the first name's slot is registered under the others
     */
    public static Module read(Path file, Set<Set<String>> tiedGroups) {
        Module root = read(file);
        tie(root, tiedGroups);
        return root;
    }

    static Module parse(JsonNode list, String source) {
        if (!list.isArray() || list.isEmpty()) {
            throw new IllegalArgumentException(source + ": expected a non-empty JSON list of modules");
        }
        Map<String, Module> byName = new HashMap<>();
        Module root = null;
        for (JsonNode entry : list) {
            String name = text(entry, "name", source);
            Module m = new Module(text(entry, "class", source));
            addTensors(m, entry.get("params"), true, source, name);
            addTensors(m, entry.get("buffers"), false, source, name);
            if (name.isEmpty()) {
                root = m;
            } else {
                int dot = name.lastIndexOf('.');
                String parent = dot < 0 ? "" : name.substring(0, dot);
                Module p = parent.isEmpty() ? root : byName.get(parent);
                if (p == null) {
                    throw new IllegalArgumentException(source + ": module '" + name
                            + "' comes before its parent '" + parent + "'");
                }
                p.addChild(name.substring(dot + 1), m);
            }
            byName.put(name, m);
        }
        if (root == null) {
            throw new IllegalArgumentException(source + ": no root module (name \"\")");
        }
        return root;
    }

    private static void addTensors(Module m, JsonNode node, boolean params, String source, String module) {
        if (node == null) {
            return;
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode shapeNode = e.getValue().get("shape");
            if (shapeNode == null || !shapeNode.isArray()) {
                throw new IllegalArgumentException(source + ": tensor '" + module + "." + e.getKey()
                        + "' has no shape list");
            }
            long[] shape = new long[shapeNode.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = shapeNode.get(i).asLong();
            }
            TensorSpec spec = new TensorSpec(shape, DType.fromTorch(text(e.getValue(), "dtype", source)));
            if (params) {
                m.registerParameter(e.getKey(), TensorSlot.parameter(spec));
            } else {
                JsonNode p = e.getValue().get("persistent");
                m.registerBuffer(e.getKey(), TensorSlot.buffer(spec, p == null || p.asBoolean(true)));
            }
        }
    }

    /** Makes each group's names share the first name's slot, as PyTorch's tied parameters do. */
    public static void tie(Module root, Set<Set<String>> tiedGroups) {
        for (Set<String> group : tiedGroups) {
            String first = null;
            TensorSlot shared = null;
            for (String full : group) {
                int dot = full.lastIndexOf('.');
                Module owner = root.find(dot < 0 ? "" : full.substring(0, dot));
                String local = full.substring(dot + 1);
                if (owner == null) {
                    throw new IllegalArgumentException("tied parameter '" + full + "': no such module");
                }
                if (shared == null) {
                    first = full;
                    shared = owner.tensor(local);
                } else {
                    TensorSlot mine = owner.ownTensors().get(local);
                    if (mine != null && !mine.spec().equals(shared.spec())) {
                        throw new IllegalArgumentException("tied parameter '" + full + "' is " + mine.spec()
                                + " but '" + first + "' is " + shared.spec());
                    }
                    owner.replaceTensor(local, shared);
                }
            }
        }
    }

    private static String text(JsonNode n, String field, String source) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException(source + ": entry " + n + " lacks a text field '" + field + "'");
        }
        return v.asText();
    }
}
