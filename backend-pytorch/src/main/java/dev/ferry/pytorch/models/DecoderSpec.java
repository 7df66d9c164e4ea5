package dev.ferry.pytorch.models;

import dev.ferry.core.config.DecoderShape;
import dev.ferry.pytorch.nn.RopeTable;
import dev.ferry.pytorch.nn.RotaryEmbedding;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Everything the shared decoder blocks need to build one family's model, read from its config: the sizes, the class
 * names, and the few options families differ in. Immutable; made by a {@link Builder} that starts from Llama's
 * choices ({@link #llama}), so a family states only its differences.
 */
public final class DecoderSpec {

    /** How a norm scales: Llama's {@code w · x̂}, or Gemma's {@code (1 + w) · x̂}. */
    public enum Norm { RMS, RMS_UNIT_OFFSET }

    /** How attention projects: separate {@code q_proj}/{@code k_proj}/{@code v_proj}, or one fused {@code qkv_proj} (Phi-3). */
    public enum Qkv { SEPARATE, FUSED }

    /** Where the norms of a layer sit. */
    public enum Residual {
        /** {@code h + attn(input_layernorm(h))}, then {@code h + mlp(post_attention_layernorm(h))}. */
        PRE_NORM,
        /**
         * Gemma's sandwich: {@code h + post_attention_layernorm(attn(input_layernorm(h)))}, then
         * {@code h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h)))}.
         */
        SANDWICH
    }

    private final ClassNames names;
    private final DecoderShape shape;
    private final Builder b;
    private final String[] ropeKinds;
    private final int[] windows;

    private DecoderSpec(Builder b) {
        this.b = b.copy();
        this.names = Objects.requireNonNull(b.names);
        this.shape = Objects.requireNonNull(b.shape);
        int layers = shape.layers();
        this.windows = new int[layers];
        this.ropeKinds = new String[layers];
        for (int i = 0; i < layers; i++) {
            boolean sliding = b.layerTypes.get(i).equals(FamilyConfig.SLIDING);
            windows[i] = sliding ? b.slidingWindow : 0;
            ropeKinds[i] = b.rope.containsKey(RotaryEmbedding.SINGLE) ? RotaryEmbedding.SINGLE : b.layerTypes.get(i);
            if (!b.rope.containsKey(ropeKinds[i])) {
                throw new IllegalArgumentException("no rotary parameters for layer kind '" + ropeKinds[i] + "'");
            }
        }
    }

    /**
     * Llama's reading of a config, which most families share: the sizes, {@code rms_norm_eps},
     * {@code hidden_act}, {@code attention_bias} (on q, k, v and o), {@code mlp_bias}, the rotary parameters of
     * {@link RopeConfig} and every layer attending to all positions.
     */
    public static Builder llama(FamilyConfig c, ClassNames names) {
        DecoderShape shape = c.shape();
        boolean bias = c.bool("attention_bias", false);
        Builder b = new Builder();
        b.names = names;
        b.shape = shape;
        b.eps = c.positive("rms_norm_eps", 1e-6);
        b.activation = c.string("hidden_act", "silu");
        b.qkvBias = bias;
        b.oBias = bias;
        b.mlpBias = c.bool("mlp_bias", false);
        b.attentionScale = Math.pow(shape.headDim(), -0.5);
        b.config = c;
        b.tied = shape.tiedEmbeddings();
        b.layerTypes = List.of(fill(shape.layers(), FamilyConfig.FULL));
        return b;
    }

    private static String[] fill(int n, String v) {
        String[] a = new String[n];
        Arrays.fill(a, v);
        return a;
    }

    public ClassNames names() {
        return names;
    }

    public DecoderShape shape() {
        return shape;
    }

    public int hidden() {
        return shape.hiddenSize();
    }

    public double eps() {
        return b.eps;
    }

    public Norm norm() {
        return b.norm;
    }

    public Qkv qkv() {
        return b.qkv;
    }

    public boolean qkvBias() {
        return b.qkvBias;
    }

    public boolean oBias() {
        return b.oBias;
    }

    public boolean mlpBias() {
        return b.mlpBias;
    }

    public boolean qkNorm() {
        return b.qkNorm;
    }

    public String activation() {
        return b.activation;
    }

    public float attentionScale() {
        return (float) b.attentionScale;
    }

    public float attentionSoftcap() {
        return (float) b.attentionSoftcap;
    }

    public float finalSoftcap() {
        return (float) b.finalSoftcap;
    }

    public float embedScale() {
        return (float) b.embedScale;
    }

    public Residual residual() {
        return b.residual;
    }

    public boolean residualDropouts() {
        return b.residualDropouts;
    }

    public boolean tiedEmbeddings() {
        return b.tied;
    }

    /**
     * 0, or the {@code original_max_position_embeddings} of a LongRoPE table, past which it rotates with the long
     * factors ({@link CausalLM#recomputesCacheAt}).
     */
    public int longRopeSwitch() {
        return b.rope.values().stream().filter(t -> t.longInvFreq() != null)
                .mapToInt(RopeTable::originalMaxPositions).findFirst().orElse(0);
    }

    public MlpFactory mlp() {
        return b.mlp;
    }

    public Map<String, RopeTable> rope() {
        return java.util.Collections.unmodifiableMap(new LinkedHashMap<>(b.rope)); // in order: buffers are registered by it
    }

    /** The rotary table layer {@code i} uses ({@link RotaryEmbedding#SINGLE} when all layers share one). */
    public String ropeKind(int layer) {
        return ropeKinds[layer];
    }

    /** Layer {@code i}'s sliding window, 0 when it attends to every earlier position. */
    public int window(int layer) {
        return windows[layer];
    }

    /**
     * The options a family changes, pre-set to Llama's. Setters return the builder; {@link #build} checks and
     * freezes a copy.
     */
    public static final class Builder {
        private ClassNames names;
        private DecoderShape shape;
        private double eps;
        private Norm norm = Norm.RMS;
        private Qkv qkv = Qkv.SEPARATE;
        private boolean qkvBias;
        private boolean oBias;
        private boolean mlpBias;
        private boolean qkNorm;
        private String activation;
        private double attentionScale;
        private double attentionSoftcap;
        private double finalSoftcap;
        private double embedScale;
        private Residual residual = Residual.PRE_NORM;
        private boolean residualDropouts;
        private MlpFactory mlp = MlpFactory.GATED;
        private Map<String, RopeTable> rope = new LinkedHashMap<>();
        private boolean partialRotary;
        private boolean tied;
        private FamilyConfig config;
        private List<String> layerTypes;
        private int slidingWindow;

        private Builder() {
        }

        private Builder copy() {
            Builder c = new Builder();
            c.names = names;
            c.shape = shape;
            c.eps = eps;
            c.norm = norm;
            c.qkv = qkv;
            c.qkvBias = qkvBias;
            c.oBias = oBias;
            c.mlpBias = mlpBias;
            c.qkNorm = qkNorm;
            c.activation = activation;
            c.attentionScale = attentionScale;
            c.attentionSoftcap = attentionSoftcap;
            c.finalSoftcap = finalSoftcap;
            c.embedScale = embedScale;
            c.residual = residual;
            c.residualDropouts = residualDropouts;
            c.mlp = mlp;
            c.rope = new LinkedHashMap<>(rope);
            c.partialRotary = partialRotary;
            c.tied = tied;
            c.config = config;
            c.layerTypes = List.copyOf(layerTypes);
            c.slidingWindow = slidingWindow;
            return c;
        }

        public Builder eps(double v) {
            eps = v;
            return this;
        }

        public Builder norm(Norm v) {
            norm = v;
            return this;
        }

        public Builder qkv(Qkv v) {
            qkv = v;
            return this;
        }

        /** Biases on q, k and v (not o), as Qwen2. */
        public Builder qkvBias(boolean v) {
            qkvBias = v;
            return this;
        }

        public Builder oBias(boolean v) {
            oBias = v;
            return this;
        }

        /** Per-head RMS norms {@code q_norm} and {@code k_norm} on queries and keys before rotation. */
        public Builder qkNorm() {
            qkNorm = true;
            return this;
        }

        public Builder activation(String v) {
            activation = v;
            return this;
        }

        /** The factor on {@code q kᵀ} (default {@code head_dim^-½}; Gemma's {@code query_pre_attn_scalar^-½}). */
        public Builder attentionScale(double v) {
            attentionScale = v;
            return this;
        }

        /** {@code tanh(s / cap) · cap} on attention scores; 0 for none. */
        public Builder attentionSoftcap(double v) {
            attentionSoftcap = v;
            return this;
        }

        /** {@code tanh(s / cap) · cap} on the output logits; 0 for none. */
        public Builder finalSoftcap(double v) {
            finalSoftcap = v;
            return this;
        }

        /** Embedding rows times {@code v} (a {@code ScaledWordEmbedding} with buffer {@code embed_scale}); 0 for none. */
        public Builder embedScale(double v) {
            embedScale = v;
            return this;
        }

        public Builder residual(Residual v) {
            residual = v;
            return this;
        }

        /** Phi-3's {@code resid_attn_dropout} and {@code resid_mlp_dropout} (identities at inference). */
        public Builder residualDropouts() {
            residualDropouts = true;
            return this;
        }

        /** What each layer's {@code mlp} child is: the extension point for mixtures of experts. */
        public Builder mlp(MlpFactory v) {
            mlp = v;
            return this;
        }

        /** Whether the head's output is the token embedding's transpose (a family's default when the config is silent). */
        public Builder tiedEmbeddings(boolean v) {
            tied = v;
            return this;
        }

        /** Rotary embeddings may cover part of each head ({@code partial_rotary_factor}, Phi-3). */
        public Builder partialRotary() {
            partialRotary = true;
            return this;
        }

        /** The config the builder reads from (for a family's own fields). */
        public FamilyConfig config() {
            return config;
        }

        public DecoderShape shape() {
            return shape;
        }

        /** One rotary table per layer kind (keys {@link FamilyConfig#FULL}, {@link FamilyConfig#SLIDING}). */
        public Builder ropePerLayerKind(Map<String, RopeTable> tables) {
            rope = new LinkedHashMap<>(tables);
            return this;
        }

        /**
         * Each layer's attention kind, and the window of the sliding ones (keys at least {@code window} positions
         * behind a query are hidden from it).
         */
        public Builder layerTypes(List<String> types, int window) {
            layerTypes = List.copyOf(types);
            slidingWindow = window;
            return this;
        }

        /**
         * Checks and freezes the options. Unless a family set tables per layer kind, one rotary table is read from
         * the config's rotary parameters.
         */
        public DecoderSpec build() {
            if (rope.isEmpty()) {
                rope.put(RotaryEmbedding.SINGLE, RopeConfig.table(config, config.config().ropeParametersJson(),
                        "rope_parameters", shape.headDim(), partialRotary));
            }
            if (layerTypes.size() != shape.layers()) {
                throw new IllegalArgumentException("layer_types lists " + layerTypes.size() + " kinds for "
                        + shape.layers() + " layers");
            }
            if (layerTypes.contains(FamilyConfig.SLIDING) && slidingWindow <= 0) {
                throw new IllegalArgumentException("sliding-window layers need a positive sliding_window");
            }
            return new DecoderSpec(this);
        }
    }
}
