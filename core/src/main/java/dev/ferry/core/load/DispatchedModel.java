package dev.ferry.core.load;

import dev.ferry.core.chat.ChatMessage;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.generate.Cancellation;
import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.LanguageModel;
import dev.ferry.core.generate.TextGeneration;
import dev.ferry.core.generate.TokenListener;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.text.ModelText;
import dev.ferry.core.text.TextTokenizer;
import java.util.List;
import java.util.Map;

/**
 * A model loaded and dispatched over its devices by {@link Ferry#model}, the same on every backend. Close it
 * (try-with-resources) to remove its hooks, stop its prefetcher, free its native arrays or ONNX sessions and unmap its
 * checkpoint and offload folder.
 *
 * <p><b>Threads.</b> A dispatched model is safe to call from many threads, and gives each call the result it would
 * give alone. Its forwards run one at a time (one forward lock per dispatch: on PyTorch every hook of the dispatch
 * shares one fair lock, held by a forward from its first hook to its end; on ONNX runs are serialised on the model),
 * so an offloaded block loaded for one call's forward is freed by that forward only. What a call brings or makes is
 * its own: the KV cache, the sampler and the tensors of a {@code generate}. Concurrent calls interleave token by
 * token and take about as long as running them one after another; for throughput use batches
 * ({@link #generate(long[][], GenerationConfig)}) or one dispatched model per thread. {@link #close()} may be
 * called while other threads are inside a call: it refuses new calls ({@link ModelClosedException}, 'the model is
 * closed') and waits for the running ones to return before freeing anything they use.
 */
public interface DispatchedModel extends AutoCloseable {

    /** The backend it runs on ({@code pytorch}, {@code onnx}). */
    String backend();

    /** The device map it was dispatched by (the one given, or the one planned for {@code auto}). */
    DeviceMap deviceMap();

    /** Every module's device, storage, hook and why: the plan as carried out. */
    DispatchReport report();

    /**
     * What the offload hooks have streamed to the execution device so far (all bytes; of those, routed experts' bytes
     * and fetches, with their names), where the backend counts it; empty otherwise. {@code reset} it to count one run.
     */
    default java.util.Optional<dev.ferry.core.hook.StreamCounter> streamCounter() {
        return java.util.Optional.empty();
    }

    /** The model as core's generation loop sees it: next-token logits, limits, end-of-sequence ids. */
    LanguageModel languageModel();

    /**
     * The new token ids after {@code prompt}, greedy or sampled as {@code config} says, stopping at an
     * end-of-sequence id (returned) or after {@code maxNewTokens} (capped by the model's positions).
     *
     * @throws IllegalArgumentException when the prompt is empty, holds an id outside the vocabulary or is too long
     */
    long[] generate(long[] prompt, GenerationConfig config);

    /**
     * The new token ids after each prompt: one left-padded, masked batch where the backend supports it (PyTorch),
     * else row by row (ONNX causal-LM exports take no attention mask); each row gets what it would get alone.
     */
    long[][] generate(long[][] prompts, GenerationConfig config);

    /**
     * The prompt through the folder's {@code tokenizer.json}, the new tokens back to text.
     *
     * @throws IllegalStateException when the model folder has no {@code tokenizer.json}
     */
    String generate(String prompt, GenerationConfig config);

    /**
     * The model folder's tokenizer, end-of-sequence ids (config.json's and generation_config.json's) and chat template.
     *
     * @throws IllegalStateException when the model is closed
     */
    ModelText text();

    /**
     * Generation as it happens: each new token and the text it completes go to {@code listener} as soon as they are
     * produced (text held while a token ends inside a UTF-8 character or may start a stop string); it stops at any
     * end-of-sequence id of the model (or the config's), a stop string of the config, {@code maxNewTokens}, the
     * model's positions, or when {@code cancellation} (may be null) is cancelled, and says which.
     *
     * @throws IllegalArgumentException when the prompt is empty, holds an id outside the vocabulary or is too long, or
     *                                  stop strings are given and the folder has no tokenizer
     */
    default Completion generate(long[] prompt, GenerationConfig config, TokenListener listener,
                                Cancellation cancellation) {
        return textGeneration().generate(prompt, config, listener, cancellation);
    }

    /** As {@link #generate(long[], GenerationConfig, TokenListener, Cancellation)} for a text prompt (encoded with the tokenizer's special tokens). */
    default Completion generate(String prompt, GenerationConfig config, TokenListener listener,
                                Cancellation cancellation) {
        long[] ids = text().requireTokenizer().encode(prompt, true);
        return generate(ids, config, listener, cancellation);
    }

    /**
     * Requests decoded together: one left-padded, masked batch where the backend takes batches (PyTorch), else one
     * after another; each streamed to its own listener, stopped on its own and given what it would get alone.
     */
    default Completion[] generate(List<TextGeneration.Request> requests) {
        return textGeneration().generate(requests);
    }

    /**
     * A reply to a conversation: the messages rendered by the model's chat template with the start of an assistant
     * turn, tokenized as transformers' {@code apply_chat_template(..., tokenize=True)} (no special tokens added), then
     * generated.
     *
     * @throws dev.ferry.core.chat.NoChatTemplateException when the model folder has no chat template
     * @throws dev.ferry.core.chat.ChatTemplateException   when the template refuses the conversation
     */
    default Completion chat(List<ChatMessage> messages, GenerationConfig config) {
        return chat(messages.stream().map(ChatMessage::toMap).toList(), null, config, null, null);
    }

    /**
     * As {@link #chat(List, GenerationConfig)}, with messages as maps (any field the template reads), tool definitions
     * ({@code null}: none), streamed to {@code listener} and cancellable.
     */
    default Completion chat(List<? extends Map<String, ?>> messages, List<? extends Map<String, ?>> tools,
                            GenerationConfig config, TokenListener listener, Cancellation cancellation) {
        long[] prompt = text().chatPrompt(messages, tools, Map.of());
        return generate(prompt, config, listener, cancellation);
    }

    private TextGeneration textGeneration() {
        ModelText text = text();
        TextTokenizer tokenizer = text.tokenizer().orElse(null);
        return new TextGeneration(languageModel(), tokenizer, text.eosTokenIds());
    }

    /** Logits of every position of {@code ids} (one forward without cache), {@code [ids.length][vocab]}. */
    float[][] logits(long[] ids);

    /**
     * One embedding per prompt (the mean of the final hidden states over the prompt's tokens).
     *
     * @throws UnsupportedOperationException where the backend cannot pool this model's hidden states
     */
    float[][] embed(long[][] prompts);

    /** Removes the hooks and frees everything the load took. Idempotent. */
    @Override
    void close();
}
