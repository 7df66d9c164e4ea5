package dev.ferry.core.module;

import java.util.List;

/**
 * A mixture-of-experts layer's experts, as a module: every child is one expert ({@code mlp.experts.0},
 * {@code mlp.experts.7}, ...) and the module's forward calls only the experts its router selected for the current
 * tokens, each once per forward whatever the number of tokens that picked it. That is what lets the dispatcher make
 * each expert a unit of its own, fetched when routed (see {@link dev.ferry.core.dispatch.PreloadRule}), and the
 * planner keep experts apart from the dense weights.
 */
public interface RoutedExperts {

    /** Experts each token is routed to (transformers' {@code num_experts_per_tok}). */
    int expertsPerToken();

    /**
     * How the experts' tensors are cut from the fused 3-D tensors transformers 5 declares ({@code gate_up_proj}
     * {@code [E, 2I, H]}, {@code down_proj} {@code [E, H, I]}): so a checkpoint in that layout loads into the
     * per-expert tree, each expert's tensor a contiguous slice of the fused one. Empty when there is no fused form.
     */
    List<FusedSlice> fusedLayout();

    /**
     * Rows {@code [fromRow, fromRow + rows)} of expert {@code e}'s matrix {@code fused[e]} are the expert's tensor
     * {@code expertTensor} (relative to the expert: {@code w1.weight}).
     *
     * @param fusedTensor the fused tensor's name relative to the experts module ({@code gate_up_proj})
     */
    record FusedSlice(String fusedTensor, String expertTensor, long fromRow, long rows) {
    }
}
