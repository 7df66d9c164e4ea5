package dev.ferry.pytorch.moe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ferry.core.module.RoutedExperts;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.DjlModule;
import java.util.ArrayList;
import java.util.List;

/**
 * A layer's experts ({@code MixtralExperts}, {@code Qwen3MoeExperts}) as one child module per expert, {@code 0} to
 * {@code E-1}: each expert is addressable by a device map ({@code model.layers.3.mlp.experts.7}) and can be a unit of
 * the plan, fetched only when routed. forward(x {@code [T, H]}, weights {@code [T, k]}, indices {@code [T, k]}) calls
 * each expert some token selected once, on the rows of the tokens that selected it, and adds its output times the
 * routing weight to those rows, in expert order (as transformers does). The expert indices are read on the host
 * first: that is what lets an offloaded expert that no token selected stay where it is.
 */
public class Experts extends DjlModule implements RoutedExperts {

    private final List<ExpertMLP> experts = new ArrayList<>();
    private final int topK;
    private final List<FusedSlice> fused;

    public Experts(String className, String expertClass, ExpertMLP.Names names, DjlBackend backend, int count,
                   int hidden, int intermediate, int topK, String activation, DType dtype) {
        super(className, backend);
        this.topK = topK;
        for (int e = 0; e < count; e++) {
            experts.add(addChild(Integer.toString(e),
                    new ExpertMLP(expertClass, names, backend, hidden, intermediate, activation, dtype)));
        }
        // transformers 5's fused layout: gate_up_proj [E, 2I, H] (gate rows first), down_proj [E, H, I]
        fused = List.of(new FusedSlice("gate_up_proj", names.gate() + ".weight", 0, intermediate),
                new FusedSlice("gate_up_proj", names.up() + ".weight", intermediate, intermediate),
                new FusedSlice("down_proj", names.down() + ".weight", 0, hidden));
    }

    public int count() {
        return experts.size();
    }

    @Override
    public int expertsPerToken() {
        return topK;
    }

    @Override
    public List<FusedSlice> fusedLayout() {
        return fused;
    }

    @Override
    protected Object forward(Object... args) {
        NDArray x = array(arg(args, 0, "hidden states"));
        NDArray weights = array(arg(args, 1, "routing weights"));
        NDArray indices = array(arg(args, 2, "expert indices"));
        long[] chosen = indices.toLongArray(); // one small copy to the host: which experts run, on which rows
        int k = (int) indices.getShape().get(indices.getShape().dimension() - 1);
        int tokens = chosen.length / k;
        List<List<Integer>> rows = new ArrayList<>(experts.size());
        List<List<Integer>> slots = new ArrayList<>(experts.size());
        for (int e = 0; e < experts.size(); e++) {
            rows.add(new ArrayList<>(0));
            slots.add(new ArrayList<>(0));
        }
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < k; j++) {
                long e = chosen[t * k + j];
                if (e < 0 || e >= experts.size()) {
                    throw new IllegalStateException(this + ": router chose expert " + e + " of " + experts.size());
                }
                rows.get((int) e).add(t);
                slots.get((int) e).add(t * k + j);
            }
        }
        try (NDScope scope = new NDScope()) {
            NDManager on = x.getManager();
            NDArray out = x.zerosLike();
            NDArray flatWeights = weights.reshape(-1);
            for (int e = 0; e < experts.size(); e++) {
                List<Integer> r = rows.get(e);
                if (r.isEmpty()) {
                    continue; // not routed: never called, so never fetched
                }
                NDArray at = on.create(toLongs(r), new Shape(r.size()));
                NDArray picked = tokens == r.size() && isIdentity(r) ? x : x.get(new NDIndex("{}", at));
                DjlTensor y = adopt(experts.get(e).call(scoped(picked)));
                NDArray w = flatWeights.get(new NDIndex("{}", on.create(toLongs(slots.get(e)), new Shape(r.size()))))
                        .reshape(r.size(), 1);
                NDArray contribution = y.array().toType(DataType.FLOAT32, false).mul(w).toType(x.getDataType(), false);
                if (picked == x) {
                    out = out.add(contribution);
                } else {
                    out.set(new NDIndex("{}", at), out.get(new NDIndex("{}", at)).add(contribution));
                }
            }
            return output(out);
        }
    }

    private static boolean isIdentity(List<Integer> rows) {
        for (int i = 0; i < rows.size(); i++) {
            if (rows.get(i) != i) {
                return false;
            }
        }
        return true;
    }

    private static long[] toLongs(List<Integer> values) {
        long[] out = new long[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = values.get(i);
        }
        return out;
    }
}
