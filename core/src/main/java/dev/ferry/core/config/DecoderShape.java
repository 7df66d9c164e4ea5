package dev.ferry.core.config;

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
 * @param learnedPositions rows of a learned position table (GPT-2's {@code wpe}); 0 for rotary models
 * @param tiedEmbeddings   whether the output head shares the token embedding
 */
public record DecoderShape(int vocabSize, int hiddenSize, int layers, int heads, int kvHeads, int headDim,
                           int intermediateSize, int mlpMatrices, int learnedPositions, boolean tiedEmbeddings) {

    /** The most parameters a config may imply: 2<sup>42</sup> (about 4.4 trillion, 8.8 TB in bfloat16). */
    public static final long MAX_PARAMETERS = 1L << 42;

    /** The weights' parameter count (matrices and embeddings; norms and biases, a rounding error, left out). */
    public BigInteger parameters() {
        BigInteger h = big(hiddenSize);
        BigInteger attention = h.multiply(big(headDim)).multiply(big(2L * heads + 2L * kvHeads));
        BigInteger mlp = h.multiply(big(intermediateSize)).multiply(big(mlpMatrices));
        BigInteger perLayer = attention.add(mlp);
        BigInteger embeddings = big(vocabSize).multiply(h).multiply(big(tiedEmbeddings ? 1 : 2))
                .add(big(learnedPositions).multiply(h));
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
