package dev.ferry.core.quant;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.NoSplitModules;
import dev.ferry.core.tensor.DType;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which modules carry int8 weights: <b>the rule, in one place</b>. A module is quantized when
 * <ul>
 *   <li>its class is {@code Linear} and it owns a 2-D {@code weight} parameter shared with no other module, and</li>
 *   <li>it lies inside one of the model's repeated blocks (its no-split classes, {@link NoSplitModules}: the
 *       decoder layers), i.e. the attention projections ({@code q/k/v/o_proj}, Phi-3's {@code qkv_proj}) and the MLP
 *       and expert projections ({@code gate/up/down_proj}, {@code gate_up_proj}, Mixtral's {@code w1/w2/w3}).</li>
 * </ul>
 * Left in the compute dtype, and why:
 * <ul>
 *   <li>embeddings: a lookup, not a matmul; one row is read per token, so their size costs memory, not bandwidth
 *       per token, and tied models share them with the head;</li>
 *   <li>norms: a vector per layer, negligible bytes, and their gains scale every channel of the residual stream;</li>
 *   <li>{@code lm_head}: outside the blocks; its errors land directly on the logits (no later layer averages them
 *       out), and the sampled token is read from them (llm-compressor's recipes leave it out for the same reason);</li>
 *   <li>MoE routers ({@code mlp.gate}, not a {@code Linear} here): tiny, and their top-k choice is discrete, so a
 *       small error can send a token to other experts.</li>
 * </ul>
 * A quantized module holds {@code weight} as int8 {@code [out, in]} and {@code weight_scale} {@code [out, 1]} in the
 * compute dtype ({@link #isQuantized}); the backend dequantizes on the execution device inside the forward.
 */
public final class QuantizedLinears {

    /** The local name of a quantized module's per-output-channel scales. */
    public static final String SCALE = "weight_scale";
    /** The local name of the weight. */
    public static final String WEIGHT = "weight";
    /** The class the rule selects (the PyTorch layer library's and transformers' {@code nn.Linear}). */
    public static final String LINEAR = "Linear";

    private QuantizedLinears() {
    }

    /** The modules of {@code root} the rule selects, in tree order (whether or not already quantized). */
    public static List<Module> targets(Module root) {
        Set<String> blocks = NoSplitModules.of(root);
        Set<TensorSlot> shared = sharedSlots(root);
        List<Module> out = new ArrayList<>();
        collect(root, false, blocks, shared, out);
        return out;
    }

    private static void collect(Module m, boolean inBlock, Set<String> blocks, Set<TensorSlot> shared,
                                List<Module> out) {
        boolean inside = inBlock || blocks.contains(m.className());
        if (inBlock && m.className().equals(LINEAR) && m.ownTensors().containsKey(WEIGHT)) {
            TensorSlot w = m.ownTensors().get(WEIGHT);
            if (w.isParameter() && w.spec().rank() == 2 && !shared.contains(w)) {
                out.add(m);
            }
        }
        for (Module c : m.children().values()) {
            collect(c, inside, blocks, shared, out);
        }
    }

    private static Set<TensorSlot> sharedSlots(Module root) {
        Map<TensorSlot, Integer> uses = new IdentityHashMap<>();
        root.namedTensors(true, true, true).values().forEach(s -> uses.merge(s, 1, Integer::sum));
        Set<TensorSlot> shared = Collections.newSetFromMap(new IdentityHashMap<>());
        uses.forEach((s, n) -> {
            if (n > 1) {
                shared.add(s);
            }
        });
        return shared;
    }

    /** Whether {@code m} holds its weight as int8 with per-channel scales. */
    public static boolean isQuantized(Module m) {
        TensorSlot w = m.ownTensors().get(WEIGHT);
        return w != null && w.spec().dtype() == DType.INT8 && m.ownTensors().containsKey(SCALE);
    }

    /**
     * The quantized weights of {@code root} by state-dict name relative to it ({@code model.layers.0.mlp.up_proj.weight}),
     * each with its scale's name: what a checkpoint of the quantized model holds, or what quantizing at load makes.
     */
    public static Map<String, String> quantizedWeights(Module root) {
        Map<String, String> out = new LinkedHashMap<>();
        Map<String, TensorSlot> state = root.stateDict();
        String suffix = "." + WEIGHT;
        state.forEach((name, slot) -> {
            if (slot.spec().dtype() == DType.INT8 && (name.equals(WEIGHT) || name.endsWith(suffix))) {
                String prefix = name.substring(0, name.length() - WEIGHT.length());
                if (state.containsKey(prefix + SCALE)) {
                    out.put(name, prefix + SCALE);
                }
            }
        });
        return out;
    }
}
