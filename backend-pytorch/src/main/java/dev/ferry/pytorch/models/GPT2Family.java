package dev.ferry.pytorch.models;

import dev.ferry.core.config.ConfigException;
import dev.ferry.core.config.ConfigNumbers;
import dev.ferry.core.config.DecoderShape;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;

/** GPT-2 ({@code model_type: gpt2}). */
public final class GPT2Family {

    /** Sizes and options shared by every block. */
    public record Dims(int embed, int heads, int inner, double eps, String activation, boolean scaleWeights,
                       boolean scaleByLayer, double attnPdrop, double residPdrop) {
    }

    private GPT2Family() {
    }

    public static GPT2LMHeadModel build(ModelConfig c, DjlBackend backend, DType dtype) {
        if (!c.modelType().equals("gpt2")) {
            throw new IllegalArgumentException("model_type '" + c.modelType() + "' is not gpt2");
        }
        if (c.bool("add_cross_attention", false)) {
            throw new IllegalArgumentException("gpt2 with add_cross_attention is not supported");
        }
        if (c.bool("reorder_and_upcast_attn", false)) {
            throw new IllegalArgumentException("gpt2 with reorder_and_upcast_attn is not supported");
        }
        ConfigNumbers n = c.numbers();
        int embed = n.positive("n_embd");
        int heads = n.positive("n_head");
        n.requireDivisible("n_embd", embed, "n_head", heads);
        int inner;
        if (n.has("n_inner")) {
            inner = n.positive("n_inner");
        } else if (4L * embed > Integer.MAX_VALUE) {
            throw new ConfigException("n_embd", "config.json: n_embd is " + embed + ", so the default n_inner "
                    + "(4 x n_embd) exceeds " + Integer.MAX_VALUE);
        } else {
            inner = 4 * embed;
        }
        int vocab = n.positive("vocab_size");
        int positions = n.positive("n_positions");
        int layers = n.layers("n_layer");
        boolean tied = c.bool("tie_word_embeddings", true);
        new DecoderShape(vocab, embed, layers, heads, heads, embed / heads, inner, 2, positions, tied)
                .requireSane(n);
        Dims d = new Dims(embed, heads, inner,
                c.number("layer_norm_epsilon", 1e-5), c.string("activation_function", "gelu_new"),
                c.bool("scale_attn_weights", true), c.bool("scale_attn_by_inverse_layer_idx", false),
                c.number("attn_pdrop", 0.1), c.number("resid_pdrop", 0.1));
        return new GPT2LMHeadModel(backend, c, d, vocab, positions, layers, tied, dtype);
    }
}
