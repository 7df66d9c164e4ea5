package dev.ferry.core.generate;

import dev.ferry.core.config.TokenLimits;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * Autoregressive decoding over any {@link LanguageModel}: greedy or sampled ({@link Sampler}), with the model's KV
 * cache when it has one and {@link GenerationConfig#useCache()}, stopping at an end-of-sequence id (which is
 * returned) or after {@code maxNewTokens}, capped by the positions the prompt leaves
 * ({@link TokenLimits#cappedNewTokens}). The loop is the same for every backend; only the forward differs.
 *
 * <p>Everything a call changes (the cache, the samplers, the token arrays) is its own, so calls from several
 * threads over one model give each the tokens it would get alone.
 */
public final class GenerationLoop {

    private GenerationLoop() {
    }

    /** The new token ids after {@code prompt}. */
    public static long[] generate(LanguageModel model, long[] prompt, GenerationConfig config) {
        return generate(model, prompt, config, (TokenObserver) null);
    }

    /**
     * The new token ids after {@code prompt}; {@code onToken} (may be null) is told each id as soon as it is chosen.
     * The sequence grows as tokens come, so a large {@code maxNewTokens} allocates nothing up front.
     *
     * @throws IllegalArgumentException when the prompt is empty, holds an id outside the vocabulary, or is longer
     *                                  than the model's positions (checked before any forward)
     */
    public static long[] generate(LanguageModel model, long[] prompt, GenerationConfig config, LongConsumer onToken) {
        return generate(model, prompt, config, onToken == null ? null : (row, token) -> {
            onToken.accept(token);
            return true;
        });
    }

    /**
     * The new token ids after {@code prompt}; {@code observer} (may be null) is told each id as soon as it is chosen
     * and may end generation after it (returning false): the token is kept.
     */
    public static long[] generate(LanguageModel model, long[] prompt, GenerationConfig config, TokenObserver observer) {
        Objects.requireNonNull(config, "config is null: pass a GenerationConfig, e.g. GenerationConfig.greedy(16)");
        TokenLimits limits = model.tokenLimits();
        limits.checkPrompt(prompt);
        Set<Long> eos = eos(model, config);
        int limit = limits.cappedNewTokens(prompt.length, config.maxNewTokens());
        Sampler sampler = new Sampler(config);
        long[] sequence = Arrays.copyOf(prompt, prompt.length + Math.min(limit, 64));
        int length = prompt.length;
        try (LanguageModel.Cache cache = config.useCache() ? model.newCache() : null) {
            long[] step = prompt;
            for (int produced = 0; produced < limit; produced++) {
                float[] logits = model.nextTokenLogits(step, 1, null, cache)[0];
                requireFinite(logits, produced, 0);
                long token = sampler.next(logits);
                if (length == sequence.length) {
                    sequence = Arrays.copyOf(sequence, length + Math.min(limit - produced, Math.max(64, length)));
                }
                sequence[length++] = token;
                if (eos.contains(token) | (observer != null && !observer.onToken(0, token))) {
                    break;
                }
                step = cache != null ? new long[] {token} : Arrays.copyOf(sequence, length);
            }
        }
        return Arrays.copyOfRange(sequence, prompt.length, length);
    }

    /**
     * The new token ids after each of {@code prompts}. When the model {@linkplain LanguageModel#supportsBatches()
     * takes batches}, the rows run as one: left-padded to the longest prompt and masked, so each row's positions and
     * attention see only its own tokens, as transformers generates a left-padded batch; each row stops on its own
     * (an end-of-sequence id, which is returned, or its cap), a stopped row being fed padding that no other row
     * sees, and has its own {@link Sampler} seeded with {@code config.seed()}, so a row gets the tokens it would get
     * alone. Otherwise the rows run one after another.
     *
     * @throws IllegalArgumentException when a prompt is empty, holds an id outside the vocabulary, or is too long
     *                                  (naming its row; checked before any forward)
     */
    public static long[][] generate(LanguageModel model, long[][] prompts, GenerationConfig config) {
        Objects.requireNonNull(config, "config is null: pass a GenerationConfig, e.g. GenerationConfig.greedy(16)");
        Objects.requireNonNull(prompts, "prompts is null: pass one array of token ids per row");
        GenerationConfig[] configs = new GenerationConfig[prompts.length];
        Arrays.fill(configs, config);
        return generate(model, prompts, configs, null);
    }

    /**
     * As {@link #generate(LanguageModel, long[][], GenerationConfig)}, each row with its own config (its cap, sampling
     * and end-of-sequence ids; {@code useCache} is the first row's), and {@code observer} (may be null) told each
     * row's tokens as they are chosen; a row whose observer returns false stops there (the token is kept) while the
     * others go on. This is how requests that arrive together at a server decode together.
     */
    public static long[][] generate(LanguageModel model, long[][] prompts, GenerationConfig[] configs,
                                    TokenObserver observer) {
        for (GenerationConfig c : configs) {
            Objects.requireNonNull(c, "config is null: pass a GenerationConfig, e.g. GenerationConfig.greedy(16)");
        }
        if (configs.length != prompts.length) {
            throw new IllegalArgumentException(prompts.length + " prompts but " + configs.length + " configs");
        }
        TokenLimits limits = model.tokenLimits();
        limits.checkBatch(prompts);
        if (prompts.length <= 1 || !model.supportsBatches()) {
            long[][] out = new long[prompts.length][];
            for (int r = 0; r < prompts.length; r++) {
                int row = r;
                out[r] = generate(model, prompts[r], configs[r],
                        observer == null ? null : (TokenObserver) (ignored, token) -> observer.onToken(row, token));
            }
            return out;
        }
        int rows = prompts.length;
        GenerationConfig config = configs[0];
        List<Set<Long>> eos = new ArrayList<>(rows);
        long pad = model.padTokenId();
        int[] cap = new int[rows];
        long[][] out = new long[rows][];
        int[] produced = new int[rows];
        Sampler[] samplers = new Sampler[rows];
        int longest = 0;
        int steps = 0;
        int active = 0;
        for (int r = 0; r < rows; r++) {
            cap[r] = limits.cappedNewTokens(prompts[r].length, configs[r].maxNewTokens());
            out[r] = new long[cap[r]];
            samplers[r] = new Sampler(configs[r]);
            eos.add(eos(model, configs[r]));
            longest = Math.max(longest, prompts[r].length);
            steps = Math.max(steps, cap[r]);
            active += cap[r] > 0 ? 1 : 0;
        }
        // the whole left-padded sequence and its mask, row-major [rows, width]; width grows by one per step
        int width = longest + steps;
        long[] ids = new long[rows * width];
        long[] mask = new long[rows * width];
        for (int r = 0; r < rows; r++) {
            int offset = longest - prompts[r].length;
            Arrays.fill(ids, r * width, r * width + offset, pad);
            System.arraycopy(prompts[r], 0, ids, r * width + offset, prompts[r].length);
            Arrays.fill(mask, r * width + offset, r * width + longest, 1L);
        }
        int length = longest;
        try (LanguageModel.Cache cache = config.useCache() ? model.newCache() : null) {
            int from = 0;
            while (active > 0) {
                int seq = length - from;
                long[] step = new long[rows * seq];
                long[] stepMask = new long[rows * length];
                for (int r = 0; r < rows; r++) {
                    System.arraycopy(ids, r * width + from, step, r * seq, seq);
                    System.arraycopy(mask, r * width, stepMask, r * length, length);
                }
                float[][] last = model.nextTokenLogits(step, rows, stepMask, cache);
                for (int r = 0; r < rows; r++) {
                    long token = pad;
                    if (produced[r] < cap[r]) {
                        requireFinite(last[r], produced[r], r);
                        token = samplers[r].next(last[r]);
                        out[r][produced[r]++] = token;
                        boolean goOn = observer == null || observer.onToken(r, token);
                        if (eos.get(r).contains(token) || !goOn || produced[r] == cap[r]) {
                            cap[r] = produced[r];
                            active--;
                        }
                    }
                    ids[r * width + length] = token;
                    mask[r * width + length] = 1; // as transformers: a stopped row keeps a full mask, its tokens unused
                }
                from = cache != null ? length : 0;
                length++;
            }
        }
        for (int r = 0; r < rows; r++) {
            out[r] = Arrays.copyOf(out[r], produced[r]);
        }
        return out;
    }

    /** Told each new token of a row as soon as it is chosen. */
    @FunctionalInterface
    public interface TokenObserver {
        /** @return whether the row goes on (false ends it after this token) */
        boolean onToken(int row, long token);
    }

    /**
     * Stops generation when a row of logits holds NaN or infinity: no token can be chosen from it (greedy would pick
     * an arbitrary one, sampling none), so the caller gets a named error instead of tokens made of garbage.
     */
    static void requireFinite(float[] logits, int step, int row) {
        for (int i = 0; i < logits.length; i++) {
            if (!Float.isFinite(logits[i])) {
                int bad = 0;
                for (float v : logits) {
                    bad += Float.isFinite(v) ? 0 : 1;
                }
                throw new NonFiniteLogitsException("the model's logits hold " + logits[i] + " (" + bad + " of "
                        + logits.length + " values not finite, first at token id " + i + ") for new token " + step
                        + (row > 0 ? " of row " + row : "") + "; generation stopped. Check config.json's numbers "
                        + "(rms_norm_eps, layer_norm_epsilon, rope_theta), the weights, and the dtype", step, row);
            }
        }
    }

    private static Set<Long> eos(LanguageModel model, GenerationConfig config) {
        return new HashSet<>(config.eosTokenIds() != null ? config.eosTokenIds() : model.eosTokenIds());
    }
}
