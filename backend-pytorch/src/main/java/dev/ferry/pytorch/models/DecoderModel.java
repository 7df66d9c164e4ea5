package dev.ferry.pytorch.models;

import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.Embedding;
import dev.ferry.pytorch.nn.KVCache;
import dev.ferry.pytorch.nn.ModuleList;
import dev.ferry.pytorch.nn.RMSNorm;
import dev.ferry.pytorch.nn.RotaryEmbedding;
import dev.ferry.pytorch.nn.ScaledEmbedding;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The trunk of the rotary families ({@code LlamaModel}, {@code Qwen3Model}, {@code Gemma3TextModel}, ...):
 * {@code embed_tokens} (scaled for Gemma), {@code layers}, {@code norm}, {@code rotary_emb}. Each layer gets the
 * cos/sin of its rotary table and the mask of its window.
 */
public class DecoderModel extends DecoderTrunk {

    private final DecoderSpec spec;
    private final Embedding embedTokens;
    private final ModuleList<DecoderLayer> layers;
    private final RMSNorm norm;
    private final RotaryEmbedding rotaryEmb;

    public DecoderModel(DecoderSpec spec, DjlBackend backend, DType dtype) {
        super(spec.names().model(), backend);
        this.spec = spec;
        int vocab = spec.shape().vocabSize();
        embedTokens = addChild("embed_tokens", spec.embedScale() > 0
                ? new ScaledEmbedding(spec.names().embedding(), backend, vocab, spec.hidden(), spec.embedScale(), dtype)
                : new Embedding(backend, vocab, spec.hidden(), dtype));
        layers = addChild("layers", new ModuleList<>());
        for (int i = 0; i < spec.shape().layers(); i++) {
            layers.add(new DecoderLayer(spec, i, backend, dtype));
        }
        norm = addChild("norm", DecoderLayer.norm(spec, backend, dtype));
        rotaryEmb = addChild("rotary_emb", new RotaryEmbedding(spec.names().rotary(), backend, spec.rope()));
    }

    @Override
    public Embedding tokenEmbedding() {
        return embedTokens;
    }

    @Override
    public int layerCount() {
        return layers.size();
    }

    @Override
    public int[] windows() {
        int[] w = new int[layers.size()];
        for (int i = 0; i < w.length; i++) {
            w[i] = spec.window(i);
        }
        return w;
    }

    @Override
    protected DjlTensor run(Object ids, DjlTensor positions, Masks masks, KVCache cache) {
        DjlTensor h = adopt(embedTokens.call(ids));
        Map<String, List<?>> rope = new HashMap<>();
        for (int i = 0; i < layers.size(); i++) {
            String kind = spec.ropeKind(i);
            DjlTensor x = h;
            List<?> cs = rope.computeIfAbsent(kind, k -> {
                List<?> r = (List<?>) (k.equals(RotaryEmbedding.SINGLE) ? rotaryEmb.call(x, positions)
                        : rotaryEmb.call(x, positions, k));
                r.forEach(o -> adopt(o));
                return r;
            });
            int held = cache == null ? 0 : cache.held(i);
            DjlTensor mask = cache == null ? masks.forWindow(h.array().getManager(), spec.window(i))
                    : masks.forWindow(h.array().getManager(), spec.window(i), held);
            DjlTensor next = adopt(layers.get(i).call(h, cs.get(0), cs.get(1), mask, cache));
            h.close(); // free each layer's input early; the scope would only do it at the end
            h = next;
        }
        return adopt(norm.call(h));
    }
}
