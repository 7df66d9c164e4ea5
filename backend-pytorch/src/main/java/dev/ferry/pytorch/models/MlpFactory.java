package dev.ferry.pytorch.models;

import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.DjlModule;

/**
 * What a decoder layer's {@code mlp} child is: a module taking the normed hidden states {@code [b, s, hidden]} and
 * returning the same shape. Dense families use {@link #GATED} or {@link #FUSED_GATE_UP}; a mixture of experts plugs
 * in its own (router and experts under the same {@code mlp} name), per layer where some layers stay dense.
 */
@FunctionalInterface
public interface MlpFactory {

    DjlModule create(DecoderSpec spec, int layerIdx, DjlBackend backend, DType dtype);

    /** {@code down_proj(act_fn(gate_proj(x)) · up_proj(x))}, Llama's. */
    MlpFactory GATED = (spec, layer, backend, dtype) -> new GatedMLP(spec, false, backend, dtype);

    /** Phi-3's: one {@code gate_up_proj} whose first half is the gate, and {@code activation_fn}. */
    MlpFactory FUSED_GATE_UP = (spec, layer, backend, dtype) -> new GatedMLP(spec, true, backend, dtype);
}
