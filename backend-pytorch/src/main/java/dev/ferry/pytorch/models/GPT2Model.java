package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.Attention;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.Dropout;
import dev.ferry.pytorch.nn.Embedding;
import dev.ferry.pytorch.nn.KVCache;
import dev.ferry.pytorch.nn.LayerNorm;
import dev.ferry.pytorch.nn.ModuleList;
import dev.ferry.pytorch.nn.PaddingMask;

/**
 * The GPT-2 trunk: token plus learned position embeddings, blocks, final LayerNorm. forward(input_ids [b, s],
 * KVCache or null, attention mask [b, past + s] or null); with a mask, positions skip the left padding.
 */
public class GPT2Model extends DjlModule {

    private final Embedding wte;
    private final Embedding wpe;
    private final Dropout drop;
    private final ModuleList<GPT2Block> h;
    private final LayerNorm lnF;

    public GPT2Model(DjlBackend backend, GPT2Family.Dims d, int vocab, int positions, int layers, double embdPdrop,
                     DType dtype) {
        super("GPT2Model", backend);
        wte = addChild("wte", new Embedding(backend, vocab, d.embed(), dtype));
        wpe = addChild("wpe", new Embedding(backend, positions, d.embed(), dtype));
        drop = addChild("drop", new Dropout(backend, embdPdrop));
        h = addChild("h", new ModuleList<>());
        for (int i = 0; i < layers; i++) {
            h.add(new GPT2Block(backend, i, d, dtype));
        }
        lnF = addChild("ln_f", new LayerNorm(backend, d.embed(), d.eps(), dtype));
    }

    public Embedding wte() {
        return wte;
    }

    public int layerCount() {
        return h.size();
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
            DjlTensor positions = padding == null ? positionIds(ids, past)
                    : scoped(padding.positionIds(ids.getManager(), seq));
            NDArray te = adopt(wte.call(idsArg)).array();
            NDArray pe = adopt(wpe.call(positions)).array();
            DjlTensor x = scoped(te.add(pe));
            x = adopt(drop.call(x), x);
            NDArray maskArray = padding == null ? Attention.causalMask(x.array().getManager(), past, seq)
                    : padding.additive(x.array().getManager(), seq);
            DjlTensor mask = maskArray == null ? null : scoped(maskArray);
            for (int i = 0; i < h.size(); i++) {
                DjlTensor next = adopt(h.get(i).call(x, mask, cache));
                x.close(); // free each block's input early; the scope would only do it at the end
                x = next;
            }
            return keep(adopt(lnF.call(x)));
        }
    }
}
