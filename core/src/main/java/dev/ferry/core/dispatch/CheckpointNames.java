package dev.ferry.core.dispatch;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.RoutedExperts;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.WeightsStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A checkpoint seen under the model's tensor names, where the two differ: a child spelled as another transformers
 * version spells it ({@link Module#aliasChild}: 4.x's {@code block_sparse_moe} for 5.x's {@code mlp}), and experts'
 * tensors stored fused, one 3-D tensor for all experts ({@link RoutedExperts#fusedLayout}: expert {@code e}'s
 * {@code w1.weight} is rows {@code [0, I)} of {@code gate_up_proj[e]}). Names the checkpoint has as they are stay as
 * they are. Nothing is copied: a renamed tensor is the checkpoint's own bytes, a cut one a slice of them. Keys are
 * the model's names plus the checkpoint's keys that no model name used (so they are still reported as unexpected).
 */
public final class CheckpointNames implements WeightsStore {

    /** A model name read as {@code key} of the checkpoint, all of it ({@code offset < 0}) or a slice. */
    private record Source(String key, long offset, TensorSpec spec) {
    }

    private final WeightsStore checkpoint;
    private final Map<String, Source> mapped;
    private final Set<String> keys;

    private CheckpointNames(WeightsStore checkpoint, Map<String, Source> mapped, Set<String> consumed) {
        this.checkpoint = checkpoint;
        this.mapped = mapped;
        Set<String> k = new LinkedHashSet<>();
        checkpoint.keys().stream().filter(x -> !consumed.contains(x)).forEach(k::add);
        k.addAll(mapped.keySet());
        this.keys = Collections.unmodifiableSet(k);
    }

    /**
     * {@code checkpoint} under {@code root}'s state-dict names; {@code checkpoint} itself when it already has every
     * name it can give (the common case: nothing is wrapped).
     *
     * @throws IllegalArgumentException when a fused experts tensor does not have the shape its experts need
     */
    public static WeightsStore view(Module root, WeightsStore checkpoint) {
        Map<String, Source> mapped = new LinkedHashMap<>();
        Set<String> consumed = new LinkedHashSet<>();
        for (String name : root.stateDict().keySet()) {
            if (checkpoint.contains(name)) {
                continue;
            }
            for (String spelling : spellings(root, name)) {
                if (checkpoint.contains(spelling)) {
                    mapped.put(name, new Source(spelling, -1, checkpoint.spec(spelling)));
                    consumed.add(spelling);
                    break;
                }
            }
            if (!mapped.containsKey(name)) {
                Source slice = fusedSlice(root, checkpoint, name);
                if (slice != null) {
                    mapped.put(name, slice);
                    consumed.add(slice.key());
                }
            }
        }
        return mapped.isEmpty() ? checkpoint : new CheckpointNames(checkpoint, mapped, consumed);
    }

    /**
     * The model name {@code name} with the other checkpoint names it may be stored under, for an error that names a
     * missing tensor: {@code model.layers.0.mlp.experts.3.w1.weight (checkpoint names tried: ...)}.
     */
    public static String describeMissing(Module root, String name) {
        List<String> tried = new ArrayList<>(spellings(root, name));
        Expert expert = expertOf(root, name);
        if (expert != null) {
            for (RoutedExperts.FusedSlice s : ((RoutedExperts) expert.holder()).fusedLayout()) {
                if (s.expertTensor().equals(expert.tensor())) {
                    tried.addAll(spellingsWithSelf(root, expert.holder().name() + "." + s.fusedTensor()));
                }
            }
        }
        return tried.isEmpty() ? name : name + " (checkpoint names tried: " + String.join(", ", tried) + ")";
    }

    /** Other spellings of {@code name} through the tree's child aliases, the name itself excluded. */
    static List<String> spellings(Module root, String name) {
        List<String> all = spellingsWithSelf(root, name);
        all.remove(name);
        return all;
    }

    private static List<String> spellingsWithSelf(Module root, String name) {
        List<String> out = new ArrayList<>();
        out.add("");
        Module m = root;
        for (String part : name.split("\\.", -1)) {
            List<String> forms = new ArrayList<>();
            forms.add(part);
            if (m != null) {
                Module at = m;
                at.childAliases().forEach((alias, local) -> {
                    if (local.equals(part)) {
                        forms.add(alias);
                    }
                });
                m = at.children().get(part);
            }
            List<String> next = new ArrayList<>();
            for (String prefix : out) {
                for (String f : forms) {
                    if (next.size() < 16) { // a handful of aliases at most; never a combinatorial blow-up
                        next.add(prefix.isEmpty() ? f : prefix + "." + f);
                    }
                }
            }
            out = next;
        }
        return out;
    }

    private record Expert(Module holder, long index, String tensor) {
    }

    /** The experts module, expert index and expert-relative tensor name of {@code name}, or {@code null}. */
    private static Expert expertOf(Module root, String name) {
        String[] parts = name.split("\\.", -1);
        Module m = root;
        for (int i = 0; i < parts.length - 1 && m != null; i++) {
            if (m instanceof RoutedExperts && i + 1 < parts.length) {
                try {
                    long index = Long.parseLong(parts[i]);
                    String rel = String.join(".", java.util.Arrays.copyOfRange(parts, i + 1, parts.length));
                    return new Expert(m, index, rel);
                } catch (NumberFormatException notAnExpert) {
                    return null;
                }
            }
            m = m.children().get(parts[i]);
        }
        return null;
    }

    private static Source fusedSlice(Module root, WeightsStore checkpoint, String name) {
        Expert expert = expertOf(root, name);
        if (expert == null) {
            return null;
        }
        int experts = expert.holder().children().size();
        for (RoutedExperts.FusedSlice s : ((RoutedExperts) expert.holder()).fusedLayout()) {
            if (!s.expertTensor().equals(expert.tensor())) {
                continue;
            }
            for (String key : spellingsWithSelf(root, expert.holder().name() + "." + s.fusedTensor())) {
                if (!checkpoint.contains(key)) {
                    continue;
                }
                TensorSpec fused = checkpoint.spec(key);
                long[] shape = fused.shape();
                if (shape.length != 3 || shape[0] != experts || s.fromRow() + s.rows() > shape[1]) {
                    throw new IllegalArgumentException("fused experts tensor '" + key + "' is " + fused
                            + "; its " + experts + " experts need [" + experts + ", >= " + (s.fromRow() + s.rows())
                            + ", cols] to give each its '" + s.expertTensor() + "'");
                }
                long elem = fused.dtype().byteSize();
                long offset = ((expert.index() * shape[1] + s.fromRow()) * shape[2]) * elem;
                return new Source(key, offset, TensorSpec.of(fused.dtype(), s.rows(), shape[2]));
            }
        }
        return null;
    }

    @Override
    public Set<String> keys() {
        return keys;
    }

    @Override
    public boolean contains(String key) {
        return keys.contains(key);
    }

    @Override
    public TensorSpec spec(String key) {
        Source s = mapped.get(key);
        return s != null ? s.spec() : checkpoint.spec(key);
    }

    @Override
    public ByteBuffer bytes(String key) {
        Source s = mapped.get(key);
        if (s == null) {
            return checkpoint.bytes(key);
        }
        ByteBuffer all = checkpoint.bytes(s.key());
        if (s.offset() < 0) {
            return all;
        }
        return all.slice((int) s.offset(), (int) s.spec().byteSize()).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The checkpoint this view reads. */
    public WeightsStore checkpoint() {
        return checkpoint;
    }
}
