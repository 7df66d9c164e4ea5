package dev.ferry.core.generate;

import dev.ferry.core.text.IncrementalDecoder;
import dev.ferry.core.text.StopStrings;
import dev.ferry.core.text.TextTokenizer;
import java.util.List;

/**
 * Generation as an application sees it, over core's {@link GenerationLoop}: tokens and text deltas delivered as they
 * are produced, stop strings, every end-of-sequence id of the model, cancellation, and why it stopped. The same on
 * every backend (only {@link LanguageModel}'s forward differs). Rows of a batch each have their own listener,
 * stop strings and cancellation, and get what they would get alone.
 */
public final class TextGeneration {

    private final LanguageModel model;
    private final TextTokenizer tokenizer;
    private final List<Long> eosTokenIds;

    /**
     * @param tokenizer   {@code null} when the model has none (no text, no stop strings)
     * @param eosTokenIds the model's end-of-sequence ids, used where a config names none
     */
    public TextGeneration(LanguageModel model, TextTokenizer tokenizer, List<Long> eosTokenIds) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.eosTokenIds = List.copyOf(eosTokenIds);
    }

    /** One prompt, streamed to {@code listener}, cancellable through {@code cancellation} (may be null). */
    public Completion generate(long[] prompt, GenerationConfig config, TokenListener listener,
                               Cancellation cancellation) {
        Row row = new Row(prompt, resolve(config), listener, cancellation);
        long[] tokens = GenerationLoop.generate(model, prompt, row.config, (r, token) -> row.accept(token));
        return row.finish(tokens);
    }

    /** One request of a batch. */
    public record Request(long[] prompt, GenerationConfig config, TokenListener listener, Cancellation cancellation) {
    }

    /**
     * The requests decoded together (one left-padded, masked batch where the model takes batches), each streamed to
     * its own listener and stopped on its own.
     */
    public Completion[] generate(List<Request> requests) {
        int n = requests.size();
        Row[] rows = new Row[n];
        long[][] prompts = new long[n][];
        GenerationConfig[] configs = new GenerationConfig[n];
        for (int i = 0; i < n; i++) {
            Request q = requests.get(i);
            rows[i] = new Row(q.prompt(), resolve(q.config()), q.listener(), q.cancellation());
            prompts[i] = q.prompt();
            configs[i] = rows[i].config;
        }
        long[][] tokens = GenerationLoop.generate(model, prompts, configs, (r, token) -> rows[r].accept(token));
        Completion[] out = new Completion[n];
        for (int i = 0; i < n; i++) {
            out[i] = rows[i].finish(tokens[i]);
        }
        return out;
    }

    private GenerationConfig resolve(GenerationConfig config) {
        if (!config.stopStrings().isEmpty() && tokenizer == null) {
            throw new IllegalArgumentException("stop strings need text, and the model folder has no tokenizer.json");
        }
        return config.eosTokenIds() == null ? config.withEos(eosTokenIds) : config;
    }

    /** One generation's text, stop strings and stop reason, fed token by token. */
    private final class Row {
        final long[] prompt;
        final GenerationConfig config;
        final TokenListener listener;
        final Cancellation cancellation;
        final IncrementalDecoder decoder;
        final StopStrings stops;
        final StringBuilder text = new StringBuilder();
        final int limit;
        int released;
        int produced;
        StopReason reason;

        Row(long[] prompt, GenerationConfig config, TokenListener listener, Cancellation cancellation) {
            this.prompt = prompt;
            this.config = config;
            this.listener = listener == null ? TokenListener.NONE : listener;
            this.cancellation = cancellation;
            this.decoder = tokenizer == null ? null : new IncrementalDecoder(tokenizer, true);
            this.stops = new StopStrings(config.stopStrings());
            this.limit = model.tokenLimits().cappedNewTokens(prompt.length, config.maxNewTokens());
        }

        /** @return whether generation goes on */
        boolean accept(long token) {
            produced++;
            if (config.eosTokenIds().contains(token)) {
                reason = StopReason.EOS;
            }
            if (decoder != null) {
                int searchFrom = Math.max(0, text.length() - stops.longest() + 1);
                text.append(decoder.add(token));
                int stop = stops.isEmpty() ? -1 : stops.find(text, searchFrom);
                if (stop >= 0) {
                    text.setLength(stop);
                    reason = StopReason.STOP_STRING;
                }
            }
            if (reason == null && cancellation != null && cancellation.isCancelled()) {
                reason = StopReason.CANCELLED;
            }
            if (reason == null && produced >= limit) {
                reason = limit < config.maxNewTokens() ? StopReason.MAX_POSITIONS : StopReason.MAX_NEW_TOKENS;
            }
            String delta = null;
            if (decoder != null) {
                if (reason != null && reason != StopReason.STOP_STRING) {
                    text.append(decoder.flush()); // the last token: an incomplete character is released as U+FFFD
                }
                int safe = reason != null ? text.length() : stops.safeLength(text);
                delta = safe > released ? text.substring(released, safe) : "";
                released = Math.max(released, safe);
            }
            listener.onToken(token, delta);
            if (reason == null && cancellation != null && cancellation.isCancelled()) {
                // cancelled while this token was delivered: end here, with the text the stream has given
                reason = StopReason.CANCELLED;
                text.setLength(Math.min(text.length(), released));
            }
            return reason == null;
        }

        Completion finish(long[] tokens) {
            if (reason == null) { // no token at all (a cap of 0)
                reason = limit < config.maxNewTokens() ? StopReason.MAX_POSITIONS : StopReason.MAX_NEW_TOKENS;
            }
            return new Completion(prompt.clone(), tokens, decoder == null ? null : text.toString(), reason);
        }
    }
}
