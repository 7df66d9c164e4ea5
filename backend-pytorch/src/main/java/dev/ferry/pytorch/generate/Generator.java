package dev.ferry.pytorch.generate;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.ndarray.NDScope;
import dev.ferry.core.config.TokenLimits;
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
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * Autoregressive decoding with a {@link CausalLM}, dispatched or not (it goes through {@code call}, so hooks
 * apply): greedy or sampled, with or without the KV cache, stopping at an end-of-sequence id (which is
 * returned) or after {@code maxNewTokens}. Prompts are token ids, or text when a tokenizer is given.
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
public final class Generator implements AutoCloseable {

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
        TokenLimits limits = model.tokenLimits();
        limits.checkPrompt(prompt);
        Set<Long> eos = new HashSet<>(config.eosTokenIds() != null ? config.eosTokenIds() : model.eosTokenIds());
        int limit = limits.cappedNewTokens(prompt.length, config.maxNewTokens());
        Sampler sampler = new Sampler(config);
        long[] sequence = Arrays.copyOf(prompt, prompt.length + limit);
        int length = prompt.length;
        try (KVCache cache = config.useCache() ? model.newCache() : null) {
            long[] step = prompt;
            for (int produced = 0; produced < limit; produced++) {
                float[] last = lastLogits(step, cache);
                long token = sampler.next(last);
                sequence[length++] = token;
                if (onToken != null) {
                    onToken.accept(token);
                }
                if (eos.contains(token)) {
                    break;
                }
                step = cache != null ? new long[] {token} : Arrays.copyOf(sequence, length);
            }
        }
        return Arrays.copyOfRange(sequence, prompt.length, length);
    }

    /** Logits of every position of {@code ids} (one forward without cache), {@code [ids.length][vocab]}. */
    public float[][] logits(long[] ids) {
        model.tokenLimits().checkPrompt(ids);
        try (DjlTensor input = backend.tokens(ids, inputDevice);
             DjlTensor logits = model.logits(input, null);
             NDScope scope = new NDScope()) {
            float[] flat = logits.array().toFloatArray();
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
