package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.Linear;

/** {@code GPT2LMHeadModel}: the trunk and an {@code lm_head} whose weight is the same slot as {@code transformer.wte}'s. */
public class GPT2LMHeadModel extends CausalLM {

    private final GPT2Model transformer;
    private final Linear lmHead;
    private final int vocab;
    private final int positions;

    public GPT2LMHeadModel(DjlBackend backend, ModelConfig config, GPT2Family.Dims d, int vocab, int positions,
                           int layers, boolean tied, DType dtype) {
        super("GPT2LMHeadModel", backend, config);
        this.vocab = vocab;
        this.positions = positions;
        transformer = addChild("transformer", new GPT2Model(backend, d, vocab, positions, layers,
                config.number("embd_pdrop", 0.1), dtype));
        lmHead = addChild("lm_head", tied ? new Linear(backend, transformer.wte().weightSlot())
                : new Linear(backend, d.embed(), vocab, false, dtype));
    }

    @Override
    public int numLayers() {
        return transformer.layerCount();
    }

    @Override
    public int vocabSize() {
        return vocab;
    }

    @Override
    public int maxPositions() {
        return positions;
    }

    @Override
    protected Object forward(Object... args) {
        Object ids = arg(args, 0, "input ids");
        Object cache = args.length > 1 ? args[1] : null;
        Object attentionMask = args.length > 2 ? args[2] : null;
        boolean hiddenStates = args.length > 3 && args[3] == HIDDEN_STATES;
        try (NDScope scope = new NDScope()) {
            var hidden = adopt(attentionMask == null ? transformer.call(ids, cache) : transformer.call(ids, cache, attentionMask));
            return keep(hiddenStates ? hidden : adopt(lmHead.call(hidden)));
        }
    }
}
