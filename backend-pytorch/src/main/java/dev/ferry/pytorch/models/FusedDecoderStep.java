package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.quant.QuantizedLinears;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.TorchNative;
import dev.ferry.pytorch.nn.KVCache;
import java.util.Map;

/**
 * A pre-norm decoder layer's step in two native calls instead of some
 * forty DJL ops: on a GPU the Java path is bound by the host issuing ops one JNI call at a time, not by the kernels.
 * The same ops in the same order as the Java layers ({@code ferry_torch.cc}), and the KV cache still updated here, so
 * windows and recomputes stay the cache's. Used where the family is Llama-shaped (RMS norms before attention and MLP,
 * separate q/k/v projections with optional biases and per-head norms, full rotary, gated SiLU MLP, no soft-capping or
 * residual dropouts), Ferry's native library is loaded, nothing is masked or one position per row is decoded (a padded batch's or
 * a sliding window's step: the additive mask goes to the fused attention), the layer's weights are on the hidden
 * states' device in their dtype (int8 projections with their scales only with {@code -Dferry.fusedInt8=on}, until
 * that has run on a GPU), and no hook sits inside the layer (a hook there streams its module's
 * weights around that module's own call, which this path does not make). {@code -Dferry.fusedLayers=off} turns it off.
 *
 * <p>A decode step (one new position per row, a KV cache) also replays the layer's CUDA graphs where the library
 * captured them: the q/k/v half and the half after attention each as one launch; attention itself stays eager, its
 * keys growing every step ({@link TorchNative#cudaGraphs}, {@code -Dferry.cudaGraphs=off}). A replay writes the graph's
 * own memory, so such steps of one layer run one thread at a time.
 */
final class FusedDecoderStep {

    private static final String[] NAMES = {
        "input_layernorm.weight",
        "self_attn.q_proj.weight", "self_attn.q_proj.bias",
        "self_attn.k_proj.weight", "self_attn.k_proj.bias",
        "self_attn.v_proj.weight", "self_attn.v_proj.bias",
        "self_attn.q_norm.weight", "self_attn.k_norm.weight",
        "self_attn.o_proj.weight", "self_attn.o_proj.bias",
        "post_attention_layernorm.weight",
        "mlp.gate_proj.weight", "mlp.gate_proj.bias",
        "mlp.up_proj.weight", "mlp.up_proj.bias",
        "mlp.down_proj.weight", "mlp.down_proj.bias",
    };
    /** Where in {@link #NAMES} the seven projection weights are: q, k, v, o, gate, up, down. */
    private static final int[] PROJECTIONS = {1, 3, 5, 9, 12, 14, 16};

    private final Module layer;
    private final DjlBackend backend;
    /** The layer's CUDA graphs, made at its first decode step on a GPU and owned by the backend. */
    private volatile TorchNative.StepGraphs graphs;
    private final int layerIdx;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final double eps;
    private final double scale;
    /**
     * The layer's tensors in {@link #NAMES}' order, {@code null} where the layer has none (a bias, a q/k norm); looked
     * up at the first step, after any quantization replaced slots ({@code null} until then).
     */
    private volatile TensorSlot[] slots;
    /** The projections' int8 scales in {@link #PROJECTIONS}' order, {@code null} where a projection has none. */
    private volatile TensorSlot[] scaleSlots;
    /** By {@link #NAMES}' index: the tensor is an int8 weight (it has a scale). */
    private volatile boolean[] int8Weight;
    /**
     * Set when the layer holds int8 weights: dequantized inside the fused step with {@code -Dferry.fusedInt8=on},
     * by the Java path otherwise; never replayed from graphs (each graph would keep its layer's dequantized weights).
     */
    private volatile boolean quantized;

    private FusedDecoderStep(Module layer, DecoderSpec spec, int layerIdx, DjlBackend backend) {
        this.layer = layer;
        this.backend = backend;
        this.layerIdx = layerIdx;
        this.heads = spec.shape().heads();
        this.kvHeads = spec.shape().kvHeads();
        this.headDim = spec.shape().headDim();
        this.eps = spec.eps();
        this.scale = spec.attentionScale();
    }

    private TensorSlot[] slots() {
        TensorSlot[] s = slots;
        if (s == null) {
            Map<String, TensorSlot> all = layer.namedTensors();
            quantized = all.keySet().stream().anyMatch(n -> n.endsWith("." + QuantizedLinears.SCALE));
            s = new TensorSlot[NAMES.length];
            for (int i = 0; i < NAMES.length; i++) {
                s[i] = all.get(NAMES[i]);
            }
            TensorSlot[] sc = new TensorSlot[PROJECTIONS.length];
            boolean[] int8 = new boolean[NAMES.length];
            for (int i = 0; i < PROJECTIONS.length; i++) {
                String weight = NAMES[PROJECTIONS[i]];
                sc[i] = all.get(weight.substring(0, weight.length() - "weight".length()) + QuantizedLinears.SCALE);
                int8[PROJECTIONS[i]] = sc[i] != null;
            }
            scaleSlots = sc;
            int8Weight = int8;
            slots = s;
        }
        return s;
    }

    /** The fused step of {@code layer}, or {@code null} when its family is not Llama-shaped. */
    static FusedDecoderStep of(Module layer, DecoderSpec spec, int layerIdx, DjlBackend backend) {
        boolean shaped = spec.residual() == DecoderSpec.Residual.PRE_NORM && spec.norm() == DecoderSpec.Norm.RMS
                && spec.qkv() == DecoderSpec.Qkv.SEPARATE && spec.attentionSoftcap() == 0f && !spec.residualDropouts()
                && spec.mlp() == MlpFactory.GATED
                && ("silu".equals(spec.activation()) || "swish".equals(spec.activation()));
        return shaped ? new FusedDecoderStep(layer, spec, layerIdx, backend) : null;
    }

    /**
     * The layer's output for {@code hidden} (the cache, if any, updated), computed in the caller's scope; {@code null}
     * when this step does not apply now and the Java path must run.
     */
    NDArray forward(NDArray hidden, NDArray cos, NDArray sin, NDArray mask, KVCache cache) {
        if (!TorchNative.fusedLayers(hidden) || cos.getShape().get(cos.getShape().dimension() - 1) != headDim
                || hooked(layer)) {
            return null;
        }
        if (mask != null && (hidden.getShape().get(1) != 1 || !TorchNative.fusedMaskedSteps()
                || !mask.getDevice().equals(hidden.getDevice()))) {
            // a masked step is fused only one position at a time (a padded batch's or a sliding window's decode
            // step), where every row's query sees at least its own key: a prefill's padded rows may see none
            return null;
        }
        TensorSlot[] slots = slots();
        if (quantized && !TorchNative.fusedInt8()) {
            return null;
        }
        NDArray[] sc = new NDArray[PROJECTIONS.length];
        for (int i = 0; i < PROJECTIONS.length; i++) {
            if (scaleSlots[i] != null) {
                sc[i] = resident(scaleSlots[i], hidden, hidden.getDataType());
                if (sc[i] == null) {
                    return null;
                }
            }
        }
        boolean[] int8 = int8Weight;
        NDArray[] w = new NDArray[slots.length];
        for (int i = 0; i < slots.length; i++) {
            if (slots[i] != null) {
                // an int8 weight is dequantized on the way (weight · scale, as Linear does); any other tensor elsewhere
                // or in another dtype: the Java path knows what to do
                w[i] = resident(slots[i], hidden, int8[i] ? DataType.INT8 : hidden.getDataType());
                if (w[i] == null) {
                    return null;
                }
            }
        }
        boolean decodeStep = cache != null && hidden.getShape().get(1) == 1;
        if (decodeStep && !quantized && TorchNative.cudaGraphs(hidden)) {
            TorchNative.StepGraphs g = graphs();
            synchronized (g) {
                return step(g, hidden, cos, sin, mask, cache, w, sc);
            }
        }
        return step(null, hidden, cos, sin, mask, cache, w, sc);
    }

    /** The array of {@code slot} when it is materialised on {@code hidden}'s device in {@code type}, else null. */
    private static NDArray resident(TensorSlot slot, NDArray hidden, DataType type) {
        if (!slot.isMaterialised() || !(slot.value() instanceof DjlTensor t)) {
            return null;
        }
        NDArray a = t.array();
        return a.getDataType() == type && a.getDevice().equals(hidden.getDevice()) ? a : null;
    }

    private NDArray step(TorchNative.StepGraphs g, NDArray hidden, NDArray cos, NDArray sin, NDArray mask,
                         KVCache cache, NDArray[] w, NDArray[] sc) {
        NDArray[] qkv = TorchNative.decoderQkv(g, new NDArray[] {hidden, w[0], w[1], w[2], w[3], w[4], w[5], w[6],
            w[7], w[8], cos, sin, sc[0], sc[1], sc[2]}, heads, kvHeads, headDim, eps);
        NDArray k = qkv[1];
        NDArray v = qkv[2];
        if (cache != null) {
            NDArray[] kv = cache.update(layerIdx, k, v);
            k = kv[0];
            v = kv[1];
        }
        return TorchNative.decoderAttentionMlp(g, new NDArray[] {hidden, qkv[0], k, v, w[9], w[10], w[11], w[12],
            w[13], w[14], w[15], w[16], w[17], mask, sc[3], sc[4], sc[5], sc[6]}, scale, eps);
    }

    private TorchNative.StepGraphs graphs() {
        TorchNative.StepGraphs g = graphs;
        if (g == null) {
            synchronized (this) {
                g = graphs;
                if (g == null) {
                    g = TorchNative.newStepGraphs();
                    backend.own(g);
                    graphs = g;
                }
            }
        }
        return g;
    }

    private static boolean hooked(Module m) {
        for (Module c : m.children().values()) {
            if (c.hook() != null || hooked(c)) {
                return true;
            }
        }
        return false;
    }
}
