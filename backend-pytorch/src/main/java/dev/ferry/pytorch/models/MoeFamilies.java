package dev.ferry.pytorch.models;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.config.ConfigException;
import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.moe.ExpertMLP;
import dev.ferry.pytorch.moe.Experts;
import dev.ferry.pytorch.moe.SparseMoeBlock;
import dev.ferry.pytorch.moe.TopKRouter;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.IntPredicate;

/**
 * The mixture-of-experts families: a dense family's decoder (Mistral's for Mixtral, Qwen3's for Qwen3-MoE) whose
 * {@code mlp} is a {@link SparseMoeBlock} (router {@code gate}, {@code experts} with one child module per expert).
 * The tree shows transformers 5's names ({@code mlp}); Mixtral's 4.x name {@code block_sparse_moe} is an alias of it,
 * for device maps and for checkpoints, which {@code save_pretrained} still writes per expert under 4.x names.
 */
public final class MoeFamilies {

    private MoeFamilies() {
    }

    /** The class names and layout of one family's MoE block. */
    private record MoeNames(String block, String router, String experts, String expert, ExpertMLP.Names expertNames,
                            boolean gateFirst) {
    }

    /**
     * Mixtral: Mistral with a sparse MoE block on every layer: {@code num_local_experts} experts of
     * {@code intermediate_size}, {@code num_experts_per_tok} per token, top-k weights always renormalised.
     */
    public static final Family MIXTRAL = new MoeFamily(new DecoderFamily("mixtral", ClassNames.of("Mixtral"),
            (c, b) -> DenseFamilies.MISTRAL.deltas().apply(c, b).mlp(sparse(c,
                    new MoeNames("MixtralSparseMoeBlock", "MixtralTopKRouter", "MixtralExperts",
                            "MixtralBlockSparseTop2MLP", ExpertMLP.Names.MIXTRAL, true),
                    experts(c), c.shape().intermediateSize(), true, layer -> true))),
            "block_sparse_moe");

    /**
     * Qwen3-MoE: Qwen3 (q/k norm) with a sparse MoE block of {@code num_experts} experts of
     * {@code moe_intermediate_size} on layers {@code (i + 1) % decoder_sparse_step == 0} not in
     * {@code mlp_only_layers} (the others keep a dense {@code Qwen3MoeMLP}); top-k renormalised when
     * {@code norm_topk_prob}.
     */
    public static final Family QWEN3_MOE = new MoeFamily(new DecoderFamily("qwen3_moe", ClassNames.of("Qwen3Moe"),
            (c, b) -> {
                Set<Integer> dense = intSet(c, "mlp_only_layers");
                int step = c.has("decoder_sparse_step") ? c.requiredPositive("decoder_sparse_step") : 1;
                return DenseFamilies.QWEN3.deltas().apply(c, b).mlp(sparse(c,
                        new MoeNames("Qwen3MoeSparseMoeBlock", "Qwen3MoeTopKRouter", "Qwen3MoeExperts",
                                "Qwen3MoeMLP", ExpertMLP.Names.GATE_UP_DOWN, false),
                        experts(c), c.requiredPositive("moe_intermediate_size"), c.bool("norm_topk_prob", false),
                        layer -> !dense.contains(layer) && (layer + 1) % step == 0));
            }), null);

    public static final List<Family> ALL = List.of(MIXTRAL, QWEN3_MOE);

    /** {@code num_experts} (Qwen's name) or {@code num_local_experts} (Mixtral's, and transformers 5's for both). */
    private static int experts(FamilyConfig c) {
        return c.has("num_experts") ? c.requiredPositive("num_experts") : c.requiredPositive("num_local_experts");
    }

    private static Set<Integer> intSet(FamilyConfig c, String key) {
        Set<Integer> out = new HashSet<>();
        JsonNode n = c.config().json().get(key);
        if (n == null || n.isNull()) {
            return out;
        }
        if (!n.isArray()) {
            throw new ConfigException(key, "config.json of model_type '" + c.modelType() + "': " + key
                    + " must be a list of layer indices, got " + n);
        }
        n.forEach(e -> out.add(e.asInt()));
        return out;
    }

    /** The MoE block on layers {@code sparse} accepts, the family's dense MLP on the others. */
    private static MlpFactory sparse(FamilyConfig c, MoeNames names, int experts, int intermediate, boolean normTopK,
                                     IntPredicate sparse) {
        int topK = c.requiredPositive("num_experts_per_tok");
        if (topK > experts) {
            throw new ConfigException("num_experts_per_tok", "config.json of model_type '" + c.modelType()
                    + "': num_experts_per_tok " + topK + " exceeds the " + experts + " experts");
        }
        return (spec, layer, backend, dtype) -> {
            if (!sparse.test(layer)) {
                return MlpFactory.GATED.create(spec, layer, backend, dtype);
            }
            TopKRouter router = new TopKRouter(names.router(), backend, spec.hidden(), experts, topK, normTopK, dtype);
            Experts ex = new Experts(names.experts(), names.expert(), names.expertNames(), backend, experts,
                    spec.hidden(), intermediate, topK, spec.activation(), dtype);
            return new SparseMoeBlock(names.block(), backend, router, ex, names.gateFirst());
        };
    }

    /** A decoder family with MoE blocks; {@code mlpAlias}: transformers 4.x's name of a layer's {@code mlp}, if any. */
    private record MoeFamily(DecoderFamily decoder, String mlpAlias) implements Family {
        @Override
        public String modelType() {
            return decoder.modelType();
        }

        @Override
        public CausalLM build(ModelConfig config, DjlBackend backend, DType dtype) {
            CausalLM lm = decoder.build(config, backend, dtype);
            Module layers = lm.find("model.layers");
            if (mlpAlias != null && layers != null) {
                layers.children().values().forEach(layer -> layer.aliasChild(mlpAlias, "mlp"));
            }
            return lm;
        }
    }
}
