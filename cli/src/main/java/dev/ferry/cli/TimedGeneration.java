package dev.ferry.cli;

import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.GenerationLoop;
import dev.ferry.core.generate.LanguageModel;
import java.io.PrintWriter;
import java.util.function.LongConsumer;

/** Generation with its timings: time to first token (the prompt's forward) and tokens per second. */
record TimedGeneration(long[] tokens, double secondsToFirstToken, double seconds) {

    /** New tokens per second over the whole generation, prompt forward included. */
    double tokensPerSecond() {
        return seconds > 0 ? tokens.length / seconds : 0;
    }

    /** Tokens per second after the first (the decode rate, one token per forward with the KV cache). */
    double decodeTokensPerSecond() {
        double rest = seconds - secondsToFirstToken;
        return tokens.length > 1 && rest > 0 ? (tokens.length - 1) / rest : 0;
    }

    /** A backend's decoding loop, telling each new token as soon as it is chosen. */
    @FunctionalInterface
    interface Decoder {
        long[] generate(long[] prompt, GenerationConfig config, LongConsumer onToken);
    }

    /** Either backend's model, decoded by core's one loop. */
    static TimedGeneration run(LanguageModel model, long[] prompt, GenerationConfig config, PrintWriter err) {
        return run((Decoder) (p, c, t) -> GenerationLoop.generate(model, p, c, t), prompt, config, err);
    }

    static TimedGeneration run(Decoder decoder, long[] prompt, GenerationConfig config, PrintWriter err) {
        long start = System.nanoTime();
        long[] first = {-1};
        try (Progress progress = Progress.start(err, "generating", config.maxNewTokens(), " tokens", 1,
                "up to " + config.maxNewTokens() + " tokens after a prompt of " + prompt.length)) {
            long[] tokens = decoder.generate(prompt, config, token -> {
                if (first[0] < 0) {
                    first[0] = System.nanoTime();
                }
                progress.step(1);
            });
            long end = System.nanoTime();
            double seconds = (end - start) / 1e9;
            double ttft = first[0] < 0 ? 0 : (first[0] - start) / 1e9;
            progress.finish(String.format("%d tokens in %.3f s", tokens.length, seconds));
            return new TimedGeneration(tokens, ttft, seconds);
        }
    }
}
