package dev.ferry.core.testing;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.RoutedExperts;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.util.List;

/**
 * A Mixtral-shaped module tree on meta (planning only, no forward), shown with transformers 5's names: per layer
 * {@code self_attn}, {@code mlp} ({@code MixtralSparseMoeBlock}: {@code gate}, then {@code experts} with one child per
 * expert: {@code w1}, {@code w2}, {@code w3}), norms; 4.x's {@code block_sparse_moe} is an alias of {@code mlp}.
 */
public final class MoeTree {

    public static final String LAYER = "MixtralDecoderLayer";

    private MoeTree() {
    }

    /** Experts module: every child an expert, {@code topK} routed per token. */
    public static final class TestExperts extends Module implements RoutedExperts {
        private final int topK;
        private final long intermediate;
        private final long hidden;

        TestExperts(int topK, long hidden, long intermediate) {
            super("MixtralExperts");
            this.topK = topK;
            this.hidden = hidden;
            this.intermediate = intermediate;
        }

        @Override
        public int expertsPerToken() {
            return topK;
        }

        @Override
        public List<FusedSlice> fusedLayout() {
            return List.of(new FusedSlice("gate_up_proj", "w1.weight", 0, intermediate),
                    new FusedSlice("gate_up_proj", "w3.weight", intermediate, intermediate),
                    new FusedSlice("down_proj", "w2.weight", 0, hidden));
        }
    }

    static Module linear(long in, long out) {
        Module m = new Module("Linear");
        m.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, out, in)));
        return m;
    }

    static Module norm(long n) {
        Module m = new Module("MixtralRMSNorm");
        m.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, n)));
        return m;
    }

    /** {@code layers} decoder layers of {@code experts} experts each (hidden {@code h}, expert MLP {@code i}). */
    public static Module mixtral(int layers, int experts, int topK, long h, long i) {
        Module root = new Module("MixtralForCausalLM");
        Module model = root.addChild("model", new Module("MixtralModel"));
        Module embed = model.addChild("embed_tokens", new Module("Embedding"));
        embed.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, 256, h)));
        Module list = model.addChild("layers", new Module("ModuleList"));
        for (int l = 0; l < layers; l++) {
            Module layer = list.addChild(Integer.toString(l), new Module(LAYER));
            Module attn = layer.addChild("self_attn", new Module("MixtralAttention"));
            attn.addChild("q_proj", linear(h, h));
            attn.addChild("o_proj", linear(h, h));
            Module moe = layer.addChild("mlp", new Module("MixtralSparseMoeBlock"));
            Module gate = moe.addChild("gate", new Module("MixtralTopKRouter"));
            gate.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, experts, h)));
            Module ex = moe.addChild("experts", new TestExperts(topK, h, i));
            for (int e = 0; e < experts; e++) {
                Module expert = ex.addChild(Integer.toString(e), new Module("MixtralBlockSparseTop2MLP"));
                expert.addChild("w1", linear(h, i));
                expert.addChild("w2", linear(i, h));
                expert.addChild("w3", linear(h, i));
            }
            layer.addChild("input_layernorm", norm(h));
            layer.addChild("post_attention_layernorm", norm(h));
            layer.aliasChild("block_sparse_moe", "mlp");
        }
        model.addChild("norm", norm(h));
        root.addChild("lm_head", linear(h, 256));
        return root;
    }
}
