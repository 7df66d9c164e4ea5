package dev.ferry.pytorch.models;

import static dev.ferry.pytorch.models.FamilyConfig.FULL;
import static dev.ferry.pytorch.models.FamilyConfig.SLIDING;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.pytorch.nn.RopeTable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * The dense rotary families, each a declaration over the shared blocks: its {@code model_type}, transformers' class
 * names, and what it changes from Llama's reading of a config ({@link DecoderSpec#llama}). Each row says only what
 * transformers' modular file for the family says differs from its parent.
 */
public final class DenseFamilies {

    private DenseFamilies() {
    }

    /** Llama: the base every other row starts from. */
    public static final DecoderFamily LLAMA = new DecoderFamily("llama", ClassNames.of("Llama"),
            (c, b) -> b);

    /** Mistral: Llama with a sliding window on every layer when {@code sliding_window} is set. */
    public static final DecoderFamily MISTRAL = new DecoderFamily("mistral", ClassNames.of("Mistral"),
            DenseFamilies::windowEverywhere);

    /**
     * Qwen2: biases on q, k and v (never o); with {@code use_sliding_window}, layers from {@code max_window_layers} on
     * slide.
     */
    public static final DecoderFamily QWEN2 = new DecoderFamily("qwen2", ClassNames.of("Qwen2"),
            (c, b) -> qwenWindows(c, b.qkvBias(true).oBias(false)));

    /** Qwen3: Qwen2's windows, {@code attention_bias} as Llama reads it, and per-head q/k RMSNorm. */
    public static final DecoderFamily QWEN3 = new DecoderFamily("qwen3", ClassNames.of("Qwen3"),
            (c, b) -> qwenWindows(c, b.qkNorm()));

    /**
     * Gemma 2: norms scale by {@code 1 + w}, embeddings by {@code sqrt(hidden)}, sandwich norms around attention and
     * MLP, scores scaled by {@code query_pre_attn_scalar^-½} and soft-capped, logits soft-capped, GELU (tanh), and
     * sliding-window layers alternating with global ones (even layers slide).
     */
    public static final DecoderFamily GEMMA2 = new DecoderFamily("gemma2",
            ClassNames.of("Gemma2").withEmbedding("Gemma2TextScaledWordEmbedding"),
            (c, b) -> gemma(c, b, i -> i % 2 == 0));

    /**
     * Gemma 3 (text): Gemma 2 with q/k norm, its own sliding pattern (every {@code sliding_window_pattern}-th layer is
     * global) and rotary parameters per layer kind (a local base for sliding layers, the global one, maybe scaled, for
     * full ones).
     */
    public static final DecoderFamily GEMMA3_TEXT = new DecoderFamily("gemma3_text",
            ClassNames.of("Gemma3").withModel("Gemma3TextModel").withEmbedding("Gemma3TextScaledWordEmbedding"),
            (c, b) -> {
                int pattern = c.has("_sliding_window_pattern") ? c.requiredPositive("_sliding_window_pattern")
                        : c.has("sliding_window_pattern") ? c.requiredPositive("sliding_window_pattern") : 6;
                return gemma(c, b, i -> (i + 1) % pattern != 0).qkNorm()
                        .ropePerLayerKind(ropePerKind(c, b.shape().headDim()));
            });

    /**
     * Phi-3: fused {@code qkv_proj} and {@code gate_up_proj}, residual dropouts, partial rotary and Mistral's window
     * (with LongRoPE, generation recomputes the cache once past the original length: {@link CausalLM#recomputesCacheAt}).
     */
    public static final DecoderFamily PHI3 = new DecoderFamily("phi3", ClassNames.of("Phi3"),
            (c, b) -> windowEverywhere(c, b.qkv(DecoderSpec.Qkv.FUSED).mlp(MlpFactory.FUSED_GATE_UP)
                    .residualDropouts().partialRotary()));

    /** Every dense family. */
    public static final List<DecoderFamily> ALL = List.of(LLAMA, MISTRAL, QWEN2, QWEN3, GEMMA2, GEMMA3_TEXT, PHI3);

    /** Every layer slides when {@code sliding_window} is set (Mistral, Phi-3), unless {@code layer_types} says otherwise. */
    private static DecoderSpec.Builder windowEverywhere(FamilyConfig c, DecoderSpec.Builder b) {
        boolean window = c.has("sliding_window");
        return windows(c, b, i -> window ? SLIDING : FULL);
    }

    /** Qwen's rule: the window applies only with {@code use_sliding_window}, to layers {@code max_window_layers} and up. */
    private static DecoderSpec.Builder qwenWindows(FamilyConfig c, DecoderSpec.Builder b) {
        if (!c.bool("use_sliding_window", false) || !c.has("sliding_window")) {
            // transformers drops the window (sliding_window = None), whatever layer_types says
            return b.layerTypes(java.util.Collections.nCopies(b.shape().layers(), FULL), 0);
        }
        int first = c.has("max_window_layers") ? c.requiredPositive("max_window_layers") : 28;
        return windows(c, b, i -> i >= first ? SLIDING : FULL);
    }

    private static DecoderSpec.Builder windows(FamilyConfig c, DecoderSpec.Builder b, IntFunction<String> fallback) {
        List<String> types = c.layerTypes(b.shape().layers(), fallback);
        int window = types.contains(SLIDING) ? c.requiredPositive("sliding_window") : 0;
        return b.layerTypes(types, window);
    }

    private static DecoderSpec.Builder gemma(FamilyConfig c, DecoderSpec.Builder llama, IntFunction<Boolean> sliding) {
        if (c.bool("use_bidirectional_attention", false)) {
            throw new IllegalArgumentException("model_type '" + c.modelType() + "' with use_bidirectional_attention "
                    + "is not supported (Ferry runs causal decoders)");
        }
        DecoderSpec.Builder b = llama
                .norm(DecoderSpec.Norm.RMS_UNIT_OFFSET)
                .residual(DecoderSpec.Residual.SANDWICH)
                .embedScale(Math.sqrt(c.shape().hiddenSize()))
                .activation(c.string("hidden_activation", "gelu_pytorch_tanh"))
                .attentionScale(Math.pow(c.required("query_pre_attn_scalar"), -0.5))
                .attentionSoftcap(c.optional("attn_logit_softcapping"))
                .finalSoftcap(c.optional("final_logit_softcapping"))
                .tiedEmbeddings(c.bool("tie_word_embeddings", true));
        return windows(c, b, i -> sliding.apply(i) ? SLIDING : FULL);
    }

    /**
     * Gemma 3's tables: {@code rope_parameters} keyed by layer kind (transformers 5), or the older
     * {@code rope_local_base_freq} for sliding layers and {@code rope_theta} / {@code rope_scaling} for full ones.
     */
    private static Map<String, RopeTable> ropePerKind(FamilyConfig c, int headDim) {
        JsonNode all = c.config().ropeParametersJson();
        Map<String, RopeTable> out = new LinkedHashMap<>();
        for (String kind : List.of(FULL, SLIDING)) { // transformers' buffer order
            JsonNode params = all.get(kind);
            if (params == null || !params.isObject()) {
                ObjectNode flat = ((ObjectNode) all).deepCopy();
                flat.remove(List.of(SLIDING, FULL));
                if (kind.equals(SLIDING)) {
                    flat.removeAll();
                    flat.put("rope_type", "default");
                    flat.put("rope_theta", c.has("rope_local_base_freq") ? c.required("rope_local_base_freq") : 10000.0);
                }
                params = flat;
            }
            out.put(kind, RopeConfig.table(c, params, "rope_parameters." + kind, headDim, false));
        }
        return out;
    }
}
