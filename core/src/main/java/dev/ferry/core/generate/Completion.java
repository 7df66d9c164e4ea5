package dev.ferry.core.generate;

/**
 * What one generation made.
 *
 * @param promptTokens the prompt's ids (for a chat, the rendered template encoded without special tokens added)
 * @param tokens       the new token ids, as produced (an end-of-sequence id included)
 * @param text         the new tokens as text, special tokens skipped, cut before a stop string; {@code null} when
 *                     the model folder has no tokenizer
 * @param stopReason   why it ended
 */
public record Completion(long[] promptTokens, long[] tokens, String text, StopReason stopReason) {
}
