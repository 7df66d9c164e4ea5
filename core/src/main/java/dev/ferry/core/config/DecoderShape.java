package dev.ferry.core.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;

/**
 * The sizes of a decoder-only transformer as its {@code config.json} gives them, checked once where the config
 * enters: the parameter count they imply must stay under {@link #MAX_PARAMETERS}, so an absurd config (a
 * hidden size of 2<sup>31</sup>-1, say) is refused in milliseconds with a message listing the sizes, instead of
 * running out of memory minutes later. The count is computed exactly ({@link BigInteger}), so no product wraps.
 *
 * @param vocabSize        tokens in the vocabulary (embedding rows)
 * @param hiddenSize       width of the residual stream
 * @param layers           decoder layers
 * @param heads            query heads
 * @param kvHeads          key/value heads ({@code heads} without grouped-query attention)
 * @param headDim          width of one head
 * @param intermediateSize width of the MLP
 * @param mlpMatrices      weight matrices of one MLP (3 for gated SiLU MLPs, 2 for GPT-2's)
 * @param maxPositions     the longest sequence the positions allow ({@link Integer#MAX_VALUE} when unbounded)
 * @param learnedPositions whether positions are a learned table of {@code maxPositions} rows (GPT-2's
 *                         {@code wpe}) rather than rotary
 * @param tiedEmbeddings   whether the output head shares the token embedding
 */
public record DecoderShape(int vocabSize, int hiddenSize, int layers, int heads, int kvHeads, int headDim,
                           int intermediateSize, int mlpMatrices, int maxPositions, boolean learnedPositions,
                           boolean tiedEmbeddings) {

    /** The most parameters a config may imply: 2<sup>42</sup> (about 4.4 trillion, 8.8 TB in bfloat16). */
    public static final long MAX_PARAMETERS = 1L << 42;

    /** The widest attention head accepted (real ones are 64 to 256): the rotary table is allocated from it. */
    public static final int MAX_HEAD_DIM = 1 << 16;

    /**
     * The sizes of a decoder config, checked: the one rule both backends and the CLI apply where a config enters.
     * GPT-2 ({@code model_type: gpt2}) reads {@code n_embd}, {@code n_head}, {@code n_inner} (default 4 x
     * n_embd), {@code n_layer}, {@code n_positions}; every other type reads transformers' standard names
     * ({@code hidden_size}, {@code num_attention_heads}, {@code num_key_value_heads}, {@code head_dim},
     * {@code intermediate_size}, {@code num_hidden_layers}, {@code max_position_embeddings}) with rotary
     * positions, as the Llama family (Llama, Mistral, Qwen2) does.
     *
     * @throws ConfigException naming the field: missing, not an integer, wrapped beyond {@code int}, not positive,
     *                         not divisible as the family requires, or implying an absurd model
     */
    public static DecoderShape fromConfig(JsonNode config, String source) {
        ConfigNumbers n = new ConfigNumbers(config, source);
        JsonNode type = config.get("model_type");
        boolean gpt2 = type != null && type.asText().equals("gpt2");
        DecoderShape shape = (gpt2 ? gpt2(n, config) : rotary(n, config)).requireSane(n);
        if (gpt2) {
            n.positiveReal("layer_norm_epsilon", 1e-5);
        } else {
            n.positiveReal("rms_norm_eps", 1e-6);
            RopeParameters.of(config, source);
        }
        return shape;
    }

    private static DecoderShape gpt2(ConfigNumbers n, JsonNode config) {
        int embed = n.positive("n_embd");
        int heads = n.positive("n_head");
        n.requireDivisible("n_embd", embed, "n_head", heads);
        int inner;
        if (n.has("n_inner")) {
            inner = n.positive("n_inner");
        } else if (4L * embed > Integer.MAX_VALUE) {
            throw new ConfigException("n_embd", n.source() + ": n_embd is " + embed + ", so the default n_inner "
                    + "(4 x n_embd) exceeds " + Integer.MAX_VALUE);
        } else {
            inner = 4 * embed;
        }
        int vocab = n.positive("vocab_size");
        int positions = n.positive("n_positions");
        int layers = n.layers("n_layer");
        return new DecoderShape(vocab, embed, layers, heads, heads, embed / heads, inner, 2, positions, true,
                bool(config, "tie_word_embeddings", true));
    }

    private static DecoderShape rotary(ConfigNumbers n, JsonNode config) {
        int hidden = n.positive("hidden_size");
        int heads = n.positive("num_attention_heads");
        int kvHeads = n.positive("num_key_value_heads", heads);
        n.requireDivisible("num_attention_heads", heads, "num_key_value_heads", kvHeads);
        String why = "heads of real models are at most a few hundred wide";
        int headDim;
        if (n.has("head_dim")) {
            headDim = n.atMost("head_dim", n.positive("head_dim"), MAX_HEAD_DIM, why);
        } else {
            n.requireDivisible("hidden_size", hidden, "num_attention_heads", heads);
            headDim = n.atMost("hidden_size / num_attention_heads", hidden / heads, MAX_HEAD_DIM, why);
        }
        if (headDim % 2 != 0) {
            throw new ConfigException("head_dim", n.source() + ": the head size (head_dim, or hidden_size / "
                    + "num_attention_heads) is " + headDim + "; rotary embeddings need it even");
        }
        int intermediate = n.positive("intermediate_size");
        int vocab = n.positive("vocab_size");
        int layers = n.layers("num_hidden_layers");
        int positions = n.positive("max_position_embeddings", Integer.MAX_VALUE);
        return new DecoderShape(vocab, hidden, layers, heads, kvHeads, headDim, intermediate, 3, positions, false,
                bool(config, "tie_word_embeddings", false));
    }

    private static boolean bool(JsonNode config, String field, boolean fallback) {
        JsonNode v = config.get(field);
        return v == null || v.isNull() ? fallback : v.asBoolean();
    }

    /** The ids and sequence lengths a model of this shape accepts. */
    public TokenLimits tokenLimits() {
        return new TokenLimits(vocabSize, maxPositions);
    }

    /** The weights' parameter count (matrices and embeddings; norms and biases, a rounding error, left out). */
    public BigInteger parameters() {
        BigInteger h = big(hiddenSize);
        BigInteger attention = h.multiply(big(headDim)).multiply(big(2L * heads + 2L * kvHeads));
        BigInteger mlp = h.multiply(big(intermediateSize)).multiply(big(mlpMatrices));
        BigInteger perLayer = attention.add(mlp);
        BigInteger embeddings = big(vocabSize).multiply(h).multiply(big(tiedEmbeddings ? 1 : 2))
                .add(big(learnedPositions ? maxPositions : 0).multiply(h));
        return perLayer.multiply(big(layers)).add(embeddings);
    }

    /**
     * This shape, once its parameter count is checked.
     *
     * @throws ConfigException naming the sizes when they imply more than {@link #MAX_PARAMETERS} parameters
     */
    public DecoderShape requireSane(ConfigNumbers numbers) {
        BigInteger n = parameters();
        if (n.compareTo(BigInteger.valueOf(MAX_PARAMETERS)) > 0) {
            throw new ConfigException("parameters", numbers.source() + " implies about " + sci(n)
                    + " parameters (vocabulary " + vocabSize + ", hidden size " + hiddenSize + ", " + layers
                    + " layers, " + heads + " heads of " + headDim + ", MLP width " + intermediateSize
                    + "), more than the " + sci(BigInteger.valueOf(MAX_PARAMETERS)) + " Ferry accepts: "
                    + "the config is probably wrong");
        }
        return this;
    }

    private static BigInteger big(long v) {
        return BigInteger.valueOf(v);
    }

    private static String sci(BigInteger n) {
        return String.format("%.2e", new BigDecimal(n).round(MathContext.DECIMAL64));
    }
}
