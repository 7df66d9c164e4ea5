package dev.ferry.pytorch.models;

/**
 * The transformers class names of a decoder family's modules, so that device maps, no-split and preload lists
 * written for Accelerate ({@code Qwen3DecoderLayer}) name Ferry's modules too. {@link #of} gives the pattern most
 * families follow from their prefix; the {@code with} methods state a family's exceptions.
 */
public record ClassNames(String causalLm, String model, String decoderLayer, String attention, String mlp,
                         String norm, String rotary, String embedding) {

    /** {@code <P>ForCausalLM}, {@code <P>Model}, {@code <P>DecoderLayer}, {@code <P>Attention}, {@code <P>MLP}, {@code <P>RMSNorm}, {@code <P>RotaryEmbedding}, {@code Embedding}. */
    public static ClassNames of(String prefix) {
        return new ClassNames(prefix + "ForCausalLM", prefix + "Model", prefix + "DecoderLayer", prefix + "Attention",
                prefix + "MLP", prefix + "RMSNorm", prefix + "RotaryEmbedding", "Embedding");
    }

    public ClassNames withModel(String name) {
        return new ClassNames(causalLm, name, decoderLayer, attention, mlp, norm, rotary, embedding);
    }

    public ClassNames withEmbedding(String name) {
        return new ClassNames(causalLm, model, decoderLayer, attention, mlp, norm, rotary, name);
    }

    public ClassNames withMlp(String name) {
        return new ClassNames(causalLm, model, decoderLayer, attention, name, norm, rotary, embedding);
    }
}
