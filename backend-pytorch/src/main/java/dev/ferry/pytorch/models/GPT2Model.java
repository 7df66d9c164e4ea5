package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.Dropout;
import dev.ferry.pytorch.nn.Embedding;
import dev.ferry.pytorch.nn.KVCache;
import dev.ferry.pytorch.nn.LayerNorm;
import dev.ferry.pytorch.nn.ModuleList;

/** The GPT-2 trunk: token plus learned position embeddings ({@code wte}, {@code wpe}), blocks {@code h}, {@code ln_f}. */
public class GPT2Model extends DecoderTrunk {

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

    @Override
    public Embedding tokenEmbedding() {
        return wte;
    }

    @Override
    public int layerCount() {
        return h.size();
    }

    @Override
    protected DjlTensor run(Object ids, DjlTensor positions, Masks masks, KVCache cache) {
        NDArray te = adopt(wte.call(ids)).array();
        NDArray pe = adopt(wpe.call(positions)).array();
        DjlTensor x = scoped(te.add(pe));
        x = adopt(drop.call(x), x);
        DjlTensor mask = masks.forWindow(x.array().getManager(), 0);
        for (int i = 0; i < h.size(); i++) {
            DjlTensor next = adopt(h.get(i).call(x, mask, cache));
            x.close(); // free each block's input early; the scope would only do it at the end
            x = next;
        }
        return adopt(lnF.call(x));
    }
}
