package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.Attention;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.Embedding;
import dev.ferry.pytorch.nn.KVCache;
import dev.ferry.pytorch.nn.ModuleList;
import dev.ferry.pytorch.nn.PaddingMask;
import dev.ferry.pytorch.nn.RMSNorm;
import dev.ferry.pytorch.nn.RotaryEmbedding;
import java.util.List;

/**
 * The Llama-family trunk: forward(input_ids [b, s], KVCache or null, attention mask [b, past + s] or null) returns
 * the final hidden states. With a mask (left padding), position ids skip the padding and padded keys are hidden.
 */
public class LlamaModel extends DjlModule {

    private final Embedding embedTokens;
    private final ModuleList<LlamaDecoderLayer> layers;
    private final RMSNorm norm;
    private final RotaryEmbedding rotaryEmb;

    public LlamaModel(String prefix, DjlBackend backend, LlamaFamily.Dims d, int vocab, int layerCount,
                      float[] invFreq, float attentionScaling, DType dtype) {
        super(prefix + "Model", backend);
        embedTokens = addChild("embed_tokens", new Embedding(backend, vocab, d.hidden(), dtype));
        layers = addChild("layers", new ModuleList<>());
        for (int i = 0; i < layerCount; i++) {
            layers.add(new LlamaDecoderLayer(prefix, backend, i, d, dtype));
        }
        norm = addChild("norm", new RMSNorm(prefix + "RMSNorm", backend, d.hidden(), d.eps(), dtype));
        rotaryEmb = addChild("rotary_emb", new RotaryEmbedding(prefix + "RotaryEmbedding", backend, invFreq,
                attentionScaling));
    }

    public Embedding embedTokens() {
        return embedTokens;
    }

    public int layerCount() {
        return layers.size();
    }

    @Override
    protected Object forward(Object... args) {
        Object idsArg = arg(args, 0, "input ids");
        NDArray ids = array(idsArg);
        KVCache cache = args.length > 1 ? (KVCache) args[1] : null;
        Object attentionMask = args.length > 2 ? args[2] : null;
        try (NDScope scope = new NDScope()) {
            int past = cache == null ? 0 : cache.length();
            int seq = (int) ids.getShape().get(1);
            PaddingMask padding = attentionMask == null ? null
                    : PaddingMask.of(array(attentionMask), ids.getShape().get(0), past, seq);
            DjlTensor h = adopt(embedTokens.call(idsArg));
            DjlTensor positions = padding == null ? positionIds(ids, past)
                    : scoped(padding.positionIds(ids.getManager(), seq));
            List<?> cs = (List<?>) rotaryEmb.call(h, positions);
            DjlTensor cos = adopt(cs.get(0));
            DjlTensor sin = adopt(cs.get(1));
            NDArray maskArray = padding == null ? Attention.causalMask(h.array().getManager(), past, seq)
                    : padding.additive(h.array().getManager(), seq);
            DjlTensor mask = maskArray == null ? null : scoped(maskArray);
            for (int i = 0; i < layers.size(); i++) {
                DjlTensor next = adopt(layers.get(i).call(h, cos, sin, mask, cache));
                h.close(); // free each layer's input early; the scope would only do it at the end
                h = next;
            }
            return keep(adopt(norm.call(h)));
        }
    }
}
