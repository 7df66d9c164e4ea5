package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDScope;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.Activation;
import dev.ferry.pytorch.nn.Conv1D;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.Dropout;

/** GPT-2 MLP: {@code c_proj(act(c_fc(x)))}. */
public class GPT2MLP extends DjlModule {

    private final Conv1D cFc;
    private final Conv1D cProj;
    private final Activation act;
    private final Dropout dropout;

    public GPT2MLP(DjlBackend backend, int embed, int inner, String activation, double pdrop, DType dtype) {
        super("GPT2MLP", backend);
        cFc = addChild("c_fc", new Conv1D(backend, embed, inner, dtype));
        cProj = addChild("c_proj", new Conv1D(backend, inner, embed, dtype));
        act = addChild("act", Activation.forName(backend, activation));
        dropout = addChild("dropout", new Dropout(backend, pdrop));
    }

    @Override
    protected Object forward(Object... args) {
        Object x = arg(args, 0, "hidden states");
        try (NDScope scope = new NDScope()) {
            DjlTensor h = adopt(act.call(adopt(cFc.call(x))));
            DjlTensor p = adopt(cProj.call(h));
            return keep(adopt(dropout.call(p), p));
        }
    }
}
