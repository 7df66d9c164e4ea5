package dev.ferry.core.generate;

import java.util.List;

/**
 * How to decode: {@code maxNewTokens}, greedy or sampled (temperature, top-k with 0 = off, top-p with 1 = off,
 * seed), whether to use the KV cache, the end-of-sequence ids ({@code null}: the model's, config.json's and
 * generation_config.json's) and stop strings (text that ends generation when it appears in the decoded output; it is
 * not part of the returned text). Build one by name with {@link #builder()}; every option has transformers' default.
 */
public record GenerationConfig(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                               long seed, boolean useCache, List<Long> eosTokenIds, List<String> stopStrings) {

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
        stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
        for (String s : stopStrings) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("a stop string may not be empty");
            }
        }
    }

    /** Without stop strings (the form before they existed). */
    public GenerationConfig(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
                            long seed, boolean useCache, List<Long> eosTokenIds) {
        this(maxNewTokens, doSample, temperature, topK, topP, seed, useCache, eosTokenIds, List.of());
    }

    public static GenerationConfig greedy(int maxNewTokens) {
        return builder().maxNewTokens(maxNewTokens).build();
    }

    public static GenerationConfig sampled(int maxNewTokens, double temperature, int topK, double topP, long seed) {
        return builder().maxNewTokens(maxNewTokens).sample(true).temperature(temperature).topK(topK).topP(topP)
                .seed(seed).build();
    }

    /** Options by name, starting from the defaults: 20 new tokens (transformers' {@code max_length} 20), greedy. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding this config's values. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.maxNewTokens = maxNewTokens;
        b.doSample = doSample;
        b.temperature = temperature;
        b.topK = topK;
        b.topP = topP;
        b.seed = seed;
        b.useCache = useCache;
        b.eosTokenIds = eosTokenIds;
        b.stopStrings = stopStrings;
        return b;
    }

    public GenerationConfig withMaxNewTokens(int n) {
        return toBuilder().maxNewTokens(n).build();
    }

    public GenerationConfig withCache(boolean use) {
        return toBuilder().useCache(use).build();
    }

    public GenerationConfig withEos(List<Long> ids) {
        return toBuilder().eosTokenIds(ids).build();
    }

    public GenerationConfig withStopStrings(List<String> stops) {
        return toBuilder().stopStrings(stops).build();
    }

    /** Named options with defaults; {@link #build()} checks them. */
    public static final class Builder {
        private int maxNewTokens = 20;
        private boolean doSample;
        private double temperature = 1.0;
        private int topK;
        private double topP = 1.0;
        private long seed;
        private boolean useCache = true;
        private List<Long> eosTokenIds;
        private List<String> stopStrings = List.of();

        private Builder() {
        }

        public Builder maxNewTokens(int n) {
            this.maxNewTokens = n;
            return this;
        }

        /** Sample (true) or pick the most likely token (false, the default). */
        public Builder sample(boolean sample) {
            this.doSample = sample;
            return this;
        }

        public Builder temperature(double t) {
            this.temperature = t;
            return this;
        }

        /** Keep the k most likely tokens when sampling; 0 (default) keeps all. */
        public Builder topK(int k) {
            this.topK = k;
            return this;
        }

        /** Keep the smallest set of tokens whose probability reaches p when sampling; 1 (default) keeps all. */
        public Builder topP(double p) {
            this.topP = p;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        public Builder useCache(boolean use) {
            this.useCache = use;
            return this;
        }

        /** End-of-sequence ids; {@code null} (default) takes the model's. */
        public Builder eosTokenIds(List<Long> ids) {
            this.eosTokenIds = ids;
            return this;
        }

        public Builder stopStrings(List<String> stops) {
            this.stopStrings = stops;
            return this;
        }

        public Builder stopStrings(String... stops) {
            return stopStrings(List.of(stops));
        }

        public GenerationConfig build() {
            return new GenerationConfig(maxNewTokens, doSample, temperature, topK, topP, seed, useCache, eosTokenIds,
                    stopStrings);
        }
    }
}
