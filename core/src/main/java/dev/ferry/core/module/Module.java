package dev.ferry.core.module;

import dev.ferry.core.hook.ModelHook;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A node of a model: a name path ({@code model.layers.3.self_attn}), a class name mirroring Hugging Face
 * transformers ({@code LlamaAttention}), ordered named children, its own parameters and buffers, and a
 * forward. {@link #call} runs {@code hook.preForward → forward → hook.postForward}, like
 * {@code nn.Module.__call__}.
 */
public class Module {

    private final String className;
    private String name = "";
    private final LinkedHashMap<String, Module> children = new LinkedHashMap<>();
    private final LinkedHashMap<String, TensorSlot> tensors = new LinkedHashMap<>();
    /** Other spellings of children's local names (another transformers version's), alias → local name. */
    private final LinkedHashMap<String, String> aliases = new LinkedHashMap<>();
    private ModelHook hook;

    public Module(String className) {
        this.className = Objects.requireNonNull(className);
    }

    /** Full name path from the root; {@code ""} for the root. */
    public final String name() {
        return name;
    }

    public final String className() {
        return className;
    }

    // ---- structure -------------------------------------------------------------------------------

    /** Adds {@code child} under {@code localName}; its name path and its descendants' follow this module's. */
    public <M extends Module> M addChild(String localName, M child) {
        checkLocalName(localName);
        if (children.containsKey(localName) || tensors.containsKey(localName)) {
            throw new IllegalArgumentException(qualified(localName) + " is already defined");
        }
        children.put(localName, child);
        ((Module) child).rename(qualified(localName));
        return child;
    }

    private void rename(String newName) {
        this.name = newName;
        children.forEach((local, c) -> c.rename(qualified(local)));
    }

    public final Map<String, Module> children() {
        return Collections.unmodifiableMap(children);
    }

    public final Module child(String localName) {
        Module c = children.get(localName);
        if (c == null) {
            throw new IllegalArgumentException("module '" + name + "' (" + className + ") has no child '"
                    + localName + "'; children: " + children.keySet());
        }
        return c;
    }

    /**
     * The descendant at a relative dotted path, or this module for {@code ""}; {@code null} when absent. A part may
     * be an alias of a child's name ({@link #aliasChild}): {@code model.layers.0.block_sparse_moe} finds
     * {@code model.layers.0.mlp}, whose {@link #name()} is the canonical spelling.
     */
    public final Module find(String relativePath) {
        if (relativePath.isEmpty()) {
            return this;
        }
        Module m = this;
        for (String part : relativePath.split("\\.", -1)) {
            Module next = m.children.get(part);
            if (next == null && m.aliases.containsKey(part)) {
                next = m.children.get(m.aliases.get(part));
            }
            m = next;
            if (m == null) {
                return null;
            }
        }
        return m;
    }

    /**
     * Lets {@code alias} stand for the child {@code localName} in {@link #find} (device-map keys) and in checkpoint
     * names: how a tree that shows transformers 5's names ({@code mlp}) accepts 4.x's ({@code block_sparse_moe}).
     */
    public final void aliasChild(String alias, String localName) {
        checkLocalName(alias);
        if (!children.containsKey(localName)) {
            throw new IllegalArgumentException(this + " has no child '" + localName + "' to alias as '" + alias + "'");
        }
        if (children.containsKey(alias) || tensors.containsKey(alias)) {
            throw new IllegalArgumentException(qualified(alias) + " is already defined");
        }
        aliases.put(alias, localName);
    }

    /** Aliases of children's names, alias → local name. */
    public final Map<String, String> childAliases() {
        return Collections.unmodifiableMap(aliases);
    }

    /** This module and every descendant, depth first in registration order (PyTorch's {@code named_modules}). */
    public final List<Module> modules() {
        List<Module> out = new ArrayList<>();
        visit(out::add);
        return out;
    }

    public final void visit(Consumer<Module> visitor) {
        visitor.accept(this);
        for (Module c : children.values()) {
            c.visit(visitor);
        }
    }

    // ---- parameters and buffers ----------------------------------------------------------------------

    public TensorSlot registerParameter(String localName, TensorSlot slot) {
        if (slot.kind() != TensorSlot.Kind.PARAMETER) {
            throw new IllegalArgumentException(qualified(localName) + ": expected a parameter slot, got " + slot);
        }
        return register(localName, slot);
    }

    public TensorSlot registerBuffer(String localName, TensorSlot slot) {
        if (slot.kind() != TensorSlot.Kind.BUFFER) {
            throw new IllegalArgumentException(qualified(localName) + ": expected a buffer slot, got " + slot);
        }
        return register(localName, slot);
    }

    private TensorSlot register(String localName, TensorSlot slot) {
        checkLocalName(localName);
        if (tensors.containsKey(localName) || children.containsKey(localName)) {
            throw new IllegalArgumentException(qualified(localName) + " is already defined");
        }
        tensors.put(localName, Objects.requireNonNull(slot));
        return slot;
    }

    /**
     * Registers {@code slot} under {@code localName}, replacing a slot of the same kind if any: how tied
     * parameters are made (the second module shares the first one's slot).
     */
    public TensorSlot replaceTensor(String localName, TensorSlot slot) {
        TensorSlot old = tensors.get(localName);
        if (old != null && old.kind() != slot.kind()) {
            throw new IllegalArgumentException(qualified(localName) + " is a " + old.kind() + ", not a " + slot.kind());
        }
        if (old == null) {
            return register(localName, slot);
        }
        tensors.put(localName, slot);
        return slot;
    }

    /** This module's own parameters and buffers (not its children's), by local name. */
    public final Map<String, TensorSlot> ownTensors() {
        return Collections.unmodifiableMap(tensors);
    }

    public final TensorSlot tensor(String localName) {
        TensorSlot s = tensors.get(localName);
        if (s == null) {
            throw new IllegalArgumentException("module '" + name + "' (" + className + ") has no tensor '"
                    + localName + "'; it has " + tensors.keySet());
        }
        return s;
    }

    public final boolean ownsTensors() {
        return !tensors.isEmpty();
    }

    /** Whether this module or a descendant owns a parameter or buffer. */
    public final boolean ownsTensorsInSubtree() {
        if (!tensors.isEmpty()) {
            return true;
        }
        for (Module c : children.values()) {
            if (c.ownsTensorsInSubtree()) {
                return true;
            }
        }
        return false;
    }

    /**
     * Tensors of this module (and its subtree when {@code recurse}), keyed by their name relative to this
     * module. Tied tensors appear once, under the first name met, unless {@code keepDuplicates}.
     */
    public final LinkedHashMap<String, TensorSlot> namedTensors(boolean includeBuffers, boolean recurse,
                                                                boolean keepDuplicates) {
        LinkedHashMap<String, TensorSlot> out = new LinkedHashMap<>();
        Set<TensorSlot> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        collect("", includeBuffers, recurse, keepDuplicates, seen, out);
        return out;
    }

    private void collect(String prefix, boolean includeBuffers, boolean recurse, boolean keepDuplicates,
                         Set<TensorSlot> seen, Map<String, TensorSlot> out) {
        tensors.forEach((local, slot) -> {
            if ((includeBuffers || slot.isParameter()) && (seen.add(slot) || keepDuplicates)) {
                out.put(prefix + local, slot);
            }
        });
        if (recurse) {
            children.forEach((local, c) ->
                    c.collect(prefix + local + ".", includeBuffers, true, keepDuplicates, seen, out));
        }
    }

    /** Every tensor of the subtree once, parameters and buffers, relative names. */
    public final LinkedHashMap<String, TensorSlot> namedTensors() {
        return namedTensors(true, true, false);
    }

    /** State-dict names (parameters and persistent buffers, tied ones under every name) mapped to slots. */
    public final LinkedHashMap<String, TensorSlot> stateDict() {
        LinkedHashMap<String, TensorSlot> all = namedTensors(true, true, true);
        all.values().removeIf(s -> !s.isPersistent());
        return all;
    }

    /** Groups of state-dict names that share one tensor (tied parameters), each group in tree order. */
    public final List<List<String>> tiedTensorGroups() {
        Map<TensorSlot, List<String>> bySlot = new IdentityHashMap<>();
        List<List<String>> order = new ArrayList<>();
        namedTensors(true, true, true).forEach((n, s) -> {
            List<String> g = bySlot.get(s);
            if (g == null) {
                g = new ArrayList<>();
                bySlot.put(s, g);
                order.add(g);
            }
            g.add(n);
        });
        order.removeIf(g -> g.size() < 2);
        return order;
    }

    /** Moves every materialised tensor of the subtree to {@code device}, like {@code nn.Module.to}. */
    public final void to(dev.ferry.core.tensor.Device device) {
        namedTensors().values().forEach(s -> s.moveTo(device));
    }

    /** Bytes of every distinct tensor of the subtree. */
    public final long byteSize() {
        long n = 0;
        for (TensorSlot s : namedTensors().values()) {
            n += s.byteSize();
        }
        return n;
    }

    // ---- forward and hooks -----------------------------------------------------------------------------

    public final ModelHook hook() {
        return hook;
    }

    /** Sets the hook without calling its {@code init}; use {@link dev.ferry.core.hook.Hooks} to attach. */
    public final void setHook(ModelHook hook) {
        this.hook = hook;
    }

    /**
     * Runs the forward surrounded by this module's hook, if any; when the forward throws, the hook's
     * {@code abortForward} runs instead of its {@code postForward} and the exception goes on.
     */
    public final Object call(Object... args) {
        ModelHook h = hook;
        if (h == null) {
            return forward(args);
        }
        Object[] in = h.preForward(this, args);
        Object out;
        try {
            out = forward(in);
        } catch (Throwable failure) {
            try {
                h.abortForward(this);
            } catch (RuntimeException | Error cleanup) {
                failure.addSuppressed(cleanup);
            }
            throw failure;
        }
        return h.postForward(this, out);
    }

    /** The computation; containers and planning-only trees have none. */
    protected Object forward(Object... args) {
        throw new UnsupportedOperationException("module '" + name + "' (" + className + ") has no forward");
    }

    private String qualified(String localName) {
        return name.isEmpty() ? localName : name + "." + localName;
    }

    private static void checkLocalName(String localName) {
        if (localName == null || localName.isEmpty() || localName.contains(".")) {
            throw new IllegalArgumentException("a local name is non-empty and has no '.': '" + localName + "'");
        }
    }

    @Override
    public String toString() {
        return (name.isEmpty() ? "<root>" : name) + " (" + className + ")";
    }
}
