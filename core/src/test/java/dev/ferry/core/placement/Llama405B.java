package dev.ferry.core.placement;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;

/**
 * A planning tree shaped like Llama 3.1 405B as transformers' {@code LlamaForCausalLM} builds it: 126 decoder
 * layers, hidden 16384, MLP 53248, 128 heads of 128 with 8 KV heads, vocabulary 128256, bfloat16, untied lm_head.
 * 1,645 modules.
 */
public final class Llama405B {

    static final int LAYERS = 126;
    static final long HIDDEN = 16384;
    static final long INTERMEDIATE = 53248;
    static final long HEADS = 128;
    static final long KV_HEADS = 8;
    static final long HEAD_DIM = 128;
    static final long VOCAB = 128256;

    static final long EMBED_BYTES = VOCAB * HIDDEN * 2;
    static final long LAYER_BYTES = 2 * (HEADS * HEAD_DIM * HIDDEN * 2 + KV_HEADS * HEAD_DIM * HIDDEN * 2
            + 3 * INTERMEDIATE * HIDDEN + 2 * HIDDEN);
    static final long ROTARY_BYTES = 2 * (HEAD_DIM / 2) * 4;
    static final long TOTAL_BYTES = 2 * EMBED_BYTES + LAYERS * LAYER_BYTES + HIDDEN * 2 + ROTARY_BYTES;

    private Llama405B() {
    }

    public static Module build() {
        Module root = new Module("LlamaForCausalLM");
        Module model = root.addChild("model", new Module("LlamaModel"));
        model.addChild("embed_tokens", weighted("Embedding", VOCAB, HIDDEN));
        Module layers = model.addChild("layers", new Module("ModuleList"));
        for (int i = 0; i < LAYERS; i++) {
            Module layer = layers.addChild(Integer.toString(i), new Module("LlamaDecoderLayer"));
            Module attn = layer.addChild("self_attn", new Module("LlamaAttention"));
            attn.addChild("q_proj", weighted("Linear", HEADS * HEAD_DIM, HIDDEN));
            attn.addChild("k_proj", weighted("Linear", KV_HEADS * HEAD_DIM, HIDDEN));
            attn.addChild("v_proj", weighted("Linear", KV_HEADS * HEAD_DIM, HIDDEN));
            attn.addChild("o_proj", weighted("Linear", HIDDEN, HEADS * HEAD_DIM));
            Module mlp = layer.addChild("mlp", new Module("LlamaMLP"));
            mlp.addChild("gate_proj", weighted("Linear", INTERMEDIATE, HIDDEN));
            mlp.addChild("up_proj", weighted("Linear", INTERMEDIATE, HIDDEN));
            mlp.addChild("down_proj", weighted("Linear", HIDDEN, INTERMEDIATE));
            mlp.addChild("act_fn", new Module("SiLUActivation"));
            layer.addChild("input_layernorm", weighted("LlamaRMSNorm", HIDDEN));
            layer.addChild("post_attention_layernorm", weighted("LlamaRMSNorm", HIDDEN));
        }
        model.addChild("norm", weighted("LlamaRMSNorm", HIDDEN));
        Module rotary = model.addChild("rotary_emb", new Module("LlamaRotaryEmbedding"));
        rotary.registerBuffer("inv_freq", TensorSlot.buffer(TensorSpec.of(DType.FLOAT32, HEAD_DIM / 2), false));
        rotary.registerBuffer("original_inv_freq", TensorSlot.buffer(TensorSpec.of(DType.FLOAT32, HEAD_DIM / 2), false));
        root.addChild("lm_head", weighted("Linear", VOCAB, HIDDEN));
        return root;
    }

    private static Module weighted(String className, long... shape) {
        Module m = new Module(className);
        m.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.BFLOAT16, shape)));
        return m;
    }
}
