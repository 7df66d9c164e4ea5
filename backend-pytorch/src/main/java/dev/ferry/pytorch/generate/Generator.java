package dev.ferry.pytorch.generate;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.config.TokenLimits;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.GenerationLoop;
import dev.ferry.core.generate.LanguageModel;
import dev.ferry.core.tensor.Device;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.nn.KVCache;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * The PyTorch backend's {@link LanguageModel}: a {@link CausalLM}, dispatched or not (it goes through {@code call}, so
 * hooks apply), decoded by core's backend-neutral {@link GenerationLoop} (greedy or sampled, with or without the KV
 * cache, one prompt or a left-padded, masked batch, stopping at an end-of-sequence id, which is returned, or after
 * {@code maxNewTokens}). Prompts are token ids, or text when a tokenizer is given. It also gives logits of every
 * position and mean-pooled embeddings.
 *
 * <p><b>Threads.</b> A generator, and the dispatched model under it, may be called from several threads at
 * once; one generator can be shared, or each thread can have its own over the same model. Everything a call
 * changes is its own: the KV cache, the sampler (and its random generator) and the input and output tensors are
 * made per call and freed when it returns. The model's forwards are serialised: the hooks of one dispatch share
 * a forward lock ({@link dev.ferry.core.dispatch.Dispatcher#dispatch}), held by each forward (one token's step)
 * from the root's hook to its end, so calls interleave token by token, in arrival order, and an offloaded
 * block's weights, loaded for one thread's forward, are freed by that forward only. Concurrent calls therefore
 * give the tokens each would give alone, and take about as long in total as running them one after the other.
 */
public final class Generator implements LanguageModel, AutoCloseable {

    private final CausalLM model;
    private final DjlBackend backend;
    private final Device inputDevice;
    private final HuggingFaceTokenizer tokenizer;

    /** Inputs are created on {@code inputDevice} (the main device; hooks move them where the model runs). */
    public Generator(CausalLM model, DjlBackend backend, Device inputDevice, HuggingFaceTokenizer tokenizer) {
        this.model = model;
        this.backend = backend;
        this.inputDevice = inputDevice;
        this.tokenizer = tokenizer;
    }

    public Generator(CausalLM model, DjlBackend backend, Device inputDevice) {
        this(model, backend, inputDevice, null);
    }

    /**
     * DJL's Hugging Face tokenizer of a model folder, when it has {@code tokenizer.json}. It never truncates nor
     * pads: DJL's default would silently cut a prompt at 512 tokens (and log a warning saying so); a prompt too long
     * for the model is refused by {@link TokenLimits} instead, naming both lengths.
     */
    public static Optional<HuggingFaceTokenizer> tokenizer(Path modelDir) {
        Path file = modelDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            return Optional.empty();
        }
        try {
            return Optional.of(HuggingFaceTokenizer.newInstance(file, java.util.Map.of("truncation", "false",
                    "padding", "false")));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tokenizer " + file + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            // the tokenizers library's own message is a bare serde error ("expected value at line 1 column 2")
            throw new IllegalArgumentException(file + " is not a valid tokenizer.json (Hugging Face tokenizers format): "
                    + e.getMessage(), e);
        }
    }

    /** The new token ids after {@code prompt}. */
    public long[] generate(long[] prompt, GenerationConfig config) {
        return generate(prompt, config, null);
    }

    /**
     * The new token ids after {@code prompt}; {@code onToken} (may be null) is told each id as soon as it is
     * chosen, for streaming output, progress and time to first token. At most as many tokens as the model's
     * positions leave after the prompt are generated ({@link TokenLimits#cappedNewTokens}).
     *
     * @throws IllegalArgumentException when the prompt is empty, holds an id outside the vocabulary, or is longer
     *                                  than the model's positions (checked before any forward)
     */
    public long[] generate(long[] prompt, GenerationConfig config, LongConsumer onToken) {
        return GenerationLoop.generate(this, prompt, config, onToken);
    }

    /**
     * The new token ids after each of {@code prompts}, run as one batch: rows are left-padded to the longest prompt
     * and masked, so each row's position ids and attention see only its own tokens, as transformers generates a
     * left-padded batch. Each row stops on its own (an end-of-sequence id, which is returned, or its cap from
     * {@link TokenLimits#cappedNewTokens}); the batch runs until every row has stopped, a stopped row being fed
     * padding that no other row sees. Each row has its own {@link dev.ferry.core.generate.Sampler} seeded with {@code config.seed()}, so a
     * row gets the tokens it would get alone: greedy tokens equal, logits within float rounding (the batch's matrix
     * shapes differ). A batch of one is {@link #generate(long[], GenerationConfig)}.
     *
     * @throws IllegalArgumentException when a prompt is empty, holds an id outside the vocabulary, or is too long
     *                                  (naming its row; checked before any forward)
     */
    public long[][] generate(long[][] prompts, GenerationConfig config) {
        return GenerationLoop.generate(this, prompts, config);
    }

    @Override
    public TokenLimits tokenLimits() {
        return model.tokenLimits();
    }

    @Override
    public List<Long> eosTokenIds() {
        return model.eosTokenIds();
    }

    @Override
    public long padTokenId() {
        return model.padTokenId();
    }

    /**
     * Every family takes left-padded, masked batches (Phi-3's LongRoPE, like transformers', picks short or long
     * factors from the batch's longest row, so a row may then differ from itself alone).
     */
    @Override
    public boolean supportsBatches() {
        return true;
    }

    @Override
    public KVCache newCache() {
        return model.newCache();
    }

    /**
     * One row without a mask is the plain forward (what the goldens were made with); otherwise the masked batch
     * forward. The cache must come from {@link #newCache()}; it records the ids it is fed, so that at the step
     * {@link CausalLM#recomputesCacheAt} names it is emptied and the whole sequence (its ids and these) is run again.
     */
    @Override
    public float[][] nextTokenLogits(long[] ids, int rows, long[] mask, LanguageModel.Cache cache) {
        KVCache kv = (KVCache) cache;
        if (kv != null) {
            if (model.recomputesCacheAt(kv.length(), ids.length / rows)) {
                ids = kv.tokensThen(ids, rows);
                kv.clear();
            }
            kv.recordTokens(ids, rows);
        }
        if (rows == 1 && mask == null) {
            return new float[][] {lastLogits(ids, kv)};
        }
        return lastLogits(ids, mask, rows, ids.length / rows, kv);
    }

    /**
     * Logits of every real position of each row of {@code prompts}, run as one left-padded, masked forward without
     * cache: {@code [row][prompts[row].length][vocab]}, equal within float rounding to {@link #logits(long[])}
     * of each row alone.
     */
    public float[][][] logits(long[][] prompts) {
        model.tokenLimits().checkBatch(prompts);
        int rows = prompts.length;
        int longest = Arrays.stream(prompts).mapToInt(p -> p.length).max().orElse(0);
        long[] ids = new long[rows * longest];
        long[] mask = new long[rows * longest];
        for (int r = 0; r < rows; r++) {
            int offset = longest - prompts[r].length;
            System.arraycopy(prompts[r], 0, ids, r * longest + offset, prompts[r].length);
            Arrays.fill(ids, r * longest, r * longest + offset, model.padTokenId());
            Arrays.fill(mask, r * longest + offset, (r + 1) * longest, 1L);
        }
        var manager = backend.manager(inputDevice);
        try (DjlTensor input = backend.wrap(manager.create(ids, new ai.djl.ndarray.types.Shape(rows, longest)));
             DjlTensor m = backend.wrap(manager.create(mask, new ai.djl.ndarray.types.Shape(rows, longest)));
             DjlTensor logits = model.logits(input, null, m);
             NDScope scope = new NDScope()) {
            float[] flat = logits.array().toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray();
            int vocab = flat.length / (rows * longest);
            float[][][] out = new float[rows][][];
            for (int r = 0; r < rows; r++) {
                int offset = longest - prompts[r].length;
                out[r] = new float[prompts[r].length][];
                for (int i = 0; i < prompts[r].length; i++) {
                    int at = (r * longest + offset + i) * vocab;
                    out[r][i] = Arrays.copyOfRange(flat, at, at + vocab);
                }
            }
            return out;
        }
    }

    /**
     * A sentence embedding per prompt: the mean of the model's final hidden states (after the final norm) over the
     * prompt's tokens, as sentence-transformers' mean pooling, the rows run as one left-padded, masked forward. Each
     * row's embedding equals the row run alone within float rounding.
     *
     * @throws IllegalArgumentException when a prompt is empty, holds an id outside the vocabulary or is too long
     */
    public float[][] embed(long[][] prompts) {
        TokenLimits limits = model.tokenLimits(); // checkBatch names a null argument or row
        limits.checkBatch(prompts);
        int rows = prompts.length;
        if (rows == 0) {
            return new float[0][];
        }
        int longest = Arrays.stream(prompts).mapToInt(p -> p.length).max().orElse(0);
        long[] ids = new long[rows * longest];
        long[] mask = new long[rows * longest];
        for (int r = 0; r < rows; r++) {
            int offset = longest - prompts[r].length;
            Arrays.fill(ids, r * longest, r * longest + offset, model.padTokenId());
            System.arraycopy(prompts[r], 0, ids, r * longest + offset, prompts[r].length);
            Arrays.fill(mask, r * longest + offset, (r + 1) * longest, 1L);
        }
        var manager = backend.manager(inputDevice);
        try (DjlTensor input = backend.wrap(manager.create(ids, new ai.djl.ndarray.types.Shape(rows, longest)));
             DjlTensor m = backend.wrap(manager.create(mask, new ai.djl.ndarray.types.Shape(rows, longest)));
             DjlTensor hidden = model.hiddenStates(input, m);
             NDScope scope = new NDScope()) {
            float[] flat = hidden.array().toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray();
            int dim = flat.length / (rows * longest);
            float[][] out = new float[rows][dim];
            for (int r = 0; r < rows; r++) {
                int offset = longest - prompts[r].length;
                double[] sum = new double[dim];
                for (int t = offset; t < longest; t++) {
                    int at = (r * longest + t) * dim;
                    for (int k = 0; k < dim; k++) {
                        sum[k] += flat[at + k];
                    }
                }
                for (int k = 0; k < dim; k++) {
                    out[r][k] = (float) (sum[k] / prompts[r].length);
                }
            }
            return out;
        }
    }

    /** Last-position logits of each row of {@code step} ({@code [rows, seq]}), with {@code mask} over the past and the step. */
    private float[][] lastLogits(long[] step, long[] stepMask, int rows, int seq, KVCache cache) {
        int length = stepMask.length / rows;
        var manager = backend.manager(inputDevice);
        try (DjlTensor input = backend.wrap(manager.create(step, new ai.djl.ndarray.types.Shape(rows, seq)));
             DjlTensor m = backend.wrap(manager.create(stepMask, new ai.djl.ndarray.types.Shape(rows, length)));
             DjlTensor logits = model.logits(input, cache, m);
             NDScope scope = new NDScope()) {
            float[] flat = logits.array().get(":, -1, :").toType(ai.djl.ndarray.types.DataType.FLOAT32, false)
                    .toFloatArray();
            int vocab = flat.length / rows;
            float[][] out = new float[rows][];
            for (int r = 0; r < rows; r++) {
                out[r] = Arrays.copyOfRange(flat, r * vocab, (r + 1) * vocab);
            }
            return out;
        }
    }

    /** Logits of every position of {@code ids} (one forward without cache), {@code [ids.length][vocab]}. */
    @Override
    public float[][] logits(long[] ids) {
        model.tokenLimits().checkPrompt(ids);
        try (DjlTensor input = backend.tokens(ids, inputDevice);
             DjlTensor logits = model.logits(input, null);
             NDScope scope = new NDScope()) {
            // a float16 model's logits are float16: read them as float32 (an alias when they already are)
            float[] flat = logits.array().toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray();
            int vocab = flat.length / ids.length;
            float[][] out = new float[ids.length][];
            for (int i = 0; i < ids.length; i++) {
                out[i] = Arrays.copyOfRange(flat, i * vocab, (i + 1) * vocab);
            }
            return out;
        }
    }

    private float[] lastLogits(long[] ids, KVCache cache) {
        try (DjlTensor input = backend.tokens(ids, inputDevice);
             DjlTensor logits = model.logits(input, cache);
             NDScope scope = new NDScope()) {
            return logits.array().get(0, ids.length - 1).toType(ai.djl.ndarray.types.DataType.FLOAT32, false)
                    .toFloatArray();
        }
    }

    /** Decodes text: the prompt through the tokenizer, the new tokens back to text. */
    public String generate(String prompt, GenerationConfig config) {
        java.util.Objects.requireNonNull(prompt, "prompt is null: pass the prompt text");
        if (tokenizer == null) {
            throw new IllegalStateException("no tokenizer: the model folder has no tokenizer.json; pass token ids");
        }
        Encoding enc = tokenizer.encode(prompt);
        long[] out = generate(enc.getIds(), config);
        return tokenizer.decode(out, true);
    }

    @Override
    public void close() {
        if (tokenizer != null) {
            tokenizer.close();
        }
    }
}
