package dev.ferry.core.generate;

import java.util.List;

/**
 * How to decode: {@code maxNewTokens}, greedy or sampled (temperature, top-k with 0 = off, top-p with 1 = off,
 * seed), whether to use the KV cache, and the end-of-sequence ids ({@code null}: the model config's).
 */
public record GenerationConfig(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                               long seed, boolean useCache, List<Long> eosTokenIds) {

    public GenerationConfig {
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("maxNewTokens must be >= 0, got " + maxNewTokens);
        }
        if (doSample && !(temperature > 0 && Double.isFinite(temperature))) {
            throw new IllegalArgumentException("temperature must be a finite number > 0 when sampling, got "
                    + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK must be >= 0 (0 = off), got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
        }
        if (eosTokenIds != null) {
            int i = 0;
            for (Long id : eosTokenIds) { // contains(null) throws on immutable lists
                if (id == null) {
                    throw new IllegalArgumentException("eosTokenIds holds null at index " + i
                            + "; give token ids, or pass null for the model config's");
                }
                i++;
            }
        }
        eosTokenIds = eosTokenIds == null ? null : List.copyOf(eosTokenIds);
    }

    public static GenerationConfig greedy(int maxNewTokens) {
        return new GenerationConfig(maxNewTokens, false, 1.0, 0, 1.0, 0, true, null);
    }

    public static GenerationConfig sampled(int maxNewTokens, double temperature, int topK, double topP, long seed) {
        return new GenerationConfig(maxNewTokens, true, temperature, topK, topP, seed, true, null);
    }

    public GenerationConfig withMaxNewTokens(int n) {
        return new GenerationConfig(n, doSample, temperature, topK, topP, seed, useCache, eosTokenIds);
    }

    public GenerationConfig withCache(boolean use) {
        return new GenerationConfig(maxNewTokens, doSample, temperature, topK, topP, seed, use, eosTokenIds);
    }

    public GenerationConfig withEos(List<Long> ids) {
        return new GenerationConfig(maxNewTokens, doSample, temperature, topK, topP, seed, useCache, ids);
    }
}
