package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.Linear;

/** {@code LlamaForCausalLM} (and {@code MistralForCausalLM}, {@code Qwen2ForCausalLM}): trunk plus {@code lm_head}. */
public class LlamaForCausalLM extends CausalLM {

    private final LlamaModel model;
    private final Linear lmHead;
    private final int vocab;
    private final int maxPositions;

    public LlamaForCausalLM(String prefix, DjlBackend backend, ModelConfig config, LlamaFamily.Dims d, int vocab,
                            int layerCount, float[] invFreq, float attentionScaling, boolean tied, DType dtype) {
        super(prefix + "ForCausalLM", backend, config);
        this.vocab = vocab;
        this.maxPositions = config.integer("max_position_embeddings", Integer.MAX_VALUE);
        model = addChild("model", new LlamaModel(prefix, backend, d, vocab, layerCount, invFreq, attentionScaling,
                dtype));
        lmHead = addChild("lm_head", tied ? new Linear(backend, model.embedTokens().weightSlot())
                : new Linear(backend, d.hidden(), vocab, false, dtype));
    }

    @Override
    public int numLayers() {
        return model.layerCount();
    }

    @Override
    public int vocabSize() {
        return vocab;
    }

    @Override
    public int maxPositions() {
        return maxPositions;
    }

    @Override
    protected Object forward(Object... args) {
        Object ids = arg(args, 0, "input ids");
        Object cache = args.length > 1 ? args[1] : null;
        Object attentionMask = args.length > 2 ? args[2] : null;
        boolean hiddenStates = args.length > 3 && args[3] == HIDDEN_STATES;
        try (NDScope scope = new NDScope()) {
            var hidden = adopt(attentionMask == null ? model.call(ids, cache) : model.call(ids, cache, attentionMask));
            return keep(hiddenStates ? hidden : adopt(lmHead.call(hidden)));
        }
    }
}
