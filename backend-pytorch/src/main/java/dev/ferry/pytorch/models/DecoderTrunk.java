package dev.ferry.pytorch.models;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.Attention;
import dev.ferry.pytorch.nn.DjlModule;
import dev.ferry.pytorch.nn.Embedding;
import dev.ferry.pytorch.nn.KVCache;
import dev.ferry.pytorch.nn.PaddingMask;
import java.util.HashMap;
import java.util.Map;

/**
 * The trunk of a decoder-only model ({@code LlamaModel}, {@code GPT2Model}, ...): forward(input_ids [b, s], KVCache
 * or null, attention mask [b, past + s] or null) returns the final hidden states. The part every family shares is
 * here: reading the cache length and the mask, position ids that skip left padding, and the additive masks (one per
 * window size, made once per forward); a family's trunk runs its embeddings and blocks in {@link #run}.
 */
public abstract class DecoderTrunk extends DjlModule {

    protected DecoderTrunk(String className, DjlBackend backend) {
        super(className, backend);
    }

    /** The token embedding, whose weight an output head may tie to. */
    public abstract Embedding tokenEmbedding();

    public abstract int layerCount();

    /** Each layer's sliding window, 0 where it attends to every earlier position (what a KV cache may drop). */
    public int[] windows() {
        return new int[layerCount()];
    }

    /**
     * The final hidden states of {@code ids} at {@code positions}, a tensor of the current scope; {@code masks} gives
     * each layer's additive mask.
     */
    protected abstract DjlTensor run(Object ids, DjlTensor positions, Masks masks, KVCache cache);

    @Override
    protected final Object forward(Object... args) {
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
            return keep(run(idsArg, positions, new Masks(padding, past, seq), cache));
        }
    }

    /** The additive attention masks of one forward, made on first use per window (0 = causal only). */
    protected final class Masks {
        private final PaddingMask padding;
        private final int past;
        private final int seq;
        private final Map<Integer, DjlTensor> made = new HashMap<>();

        private Masks(PaddingMask padding, int past, int seq) {
            this.padding = padding;
            this.past = past;
            this.seq = seq;
        }

        /** The mask for layers of {@code window} ({@code null} when it hides nothing), a temporary of the forward's scope. */
        public DjlTensor forWindow(NDManager manager, int window) {
            return forWindow(manager, window, past);
        }

        /**
         * The mask for layers of {@code window} whose cache holds only the last {@code held} of the {@code past}
         * positions (a sliding-window cache): its key columns are those positions and the new ones.
         */
        public DjlTensor forWindow(NDManager manager, int window, int held) {
            if (made.containsKey(window)) {
                return made.get(window);
            }
            NDArray m = padding == null ? Attention.causalMask(manager, past, seq, window)
                    : padding.additive(manager, seq, window);
            if (m != null && held < past) {
                m = m.get(":, :, :, " + (past - held) + ":"); // the dropped positions were hidden anyway
            }
            DjlTensor t = m == null ? null : scoped(m);
            made.put(window, t);
            return t;
        }
    }
}
