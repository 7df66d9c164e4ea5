package dev.ferry.pytorch.moe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.DjlModule;
import java.util.List;

/**
 * The router of a mixture-of-experts layer ({@code MixtralTopKRouter}, {@code Qwen3MoeTopKRouter}): logits
 * {@code x Wᵀ} over the experts ({@code weight [E, H]}), softmax in float32, the top {@code k}, renormalised to sum
 * to 1 when {@code normTopK} (always for Mixtral; {@code norm_topk_prob} for Qwen3-MoE). forward(x {@code [T, H]})
 * returns {@code [weights [T, k] float32, expert indices [T, k] int64]}, both caller-owned.
 */
public class TopKRouter extends DjlModule {

    private final int topK;
    private final boolean normTopK;

    public TopKRouter(String className, DjlBackend backend, int hidden, int experts, int topK, boolean normTopK,
                      DType dtype) {
        super(className, backend);
        if (topK < 1 || topK > experts) {
            throw new IllegalArgumentException("num_experts_per_tok must be in 1.." + experts + ", got " + topK);
        }
        this.topK = topK;
        this.normTopK = normTopK;
        registerParameter("weight", TensorSlot.parameter(TensorSpec.of(dtype, experts, hidden)));
    }

    public int topK() {
        return topK;
    }

    @Override
    protected Object forward(Object... args) {
        NDArray x = array(arg(args, 0, "hidden states"));
        try (NDScope scope = new NDScope()) {
            NDArray logits = x.getNDArrayInternal().linear(x, weight("weight"), null).singletonOrThrow();
            NDArray probs = logits.toType(DataType.FLOAT32, false).softmax(-1);
            NDList top = probs.topK(topK, -1, true, true);
            NDArray values = top.get(0);
            if (normTopK) {
                values = values.div(values.sum(new int[] {-1}, true));
            }
            return List.of(output(values), output(top.get(1)));
        }
    }
}
