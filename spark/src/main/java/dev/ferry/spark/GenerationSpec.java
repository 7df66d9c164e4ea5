package dev.ferry.spark;

import dev.ferry.core.generate.GenerationConfig;
import java.io.Serializable;
import java.util.List;

/**
 * How each row is decoded (a serializable {@link GenerationConfig}): greedy when {@code temperature} is 0,
 * else sampled with top-k (0 = off), top-p (1 = off) and the seed, which every row uses afresh, so a row gets
 * the same tokens whichever batch, partition or retry it runs in. {@code eosTokenIds} {@code null}: the model's.
 */
public record GenerationSpec(int maxNewTokens, double temperature, int topK, double topP, long seed,
                             List<Long> eosTokenIds) implements Serializable {

    public GenerationSpec {
        eosTokenIds = eosTokenIds == null ? null : List.copyOf(eosTokenIds);
        config(maxNewTokens, temperature, topK, topP, seed, eosTokenIds); // checked on the driver
    }

    public static GenerationSpec greedy(int maxNewTokens) {
        return new GenerationSpec(maxNewTokens, 0, 0, 1.0, 0, null);
    }

    public GenerationSpec withEos(List<Long> ids) {
        return new GenerationSpec(maxNewTokens, temperature, topK, topP, seed, ids);
    }

    public GenerationConfig config() {
        return config(maxNewTokens, temperature, topK, topP, seed, eosTokenIds);
    }

    private static GenerationConfig config(int maxNewTokens, double temperature, int topK, double topP, long seed,
                                           List<Long> eos) {
        boolean sample = temperature != 0 || topK != 0 || topP != 1.0;
        GenerationConfig c = sample
                ? GenerationConfig.sampled(maxNewTokens, temperature == 0 ? 1.0 : temperature, topK, topP, seed)
                : GenerationConfig.greedy(maxNewTokens);
        return c.withEos(eos);
    }
}
