package dev.ferry.core.config;

import java.util.Objects;

/**
 * What a causal language model accepts as input, checked before anything is allocated or run: token ids in
 * {@code 0..vocabSize-1}, and a sequence (prompt plus new tokens) of at most {@code maxPositions}.
 *
 * <p>The same rule serves both backends, so the same bad input gives the same error. A prompt longer than the
 * positions is refused; a request for more new tokens than the positions leave is <em>capped</em> (as
 * transformers stops at {@code max_length}), see {@link #cappedNewTokens}.
 *
 * @param vocabSize    the vocabulary size; ids must be below it ({@link Integer#MAX_VALUE} when unknown)
 * @param maxPositions the longest sequence the model's positions allow ({@link Integer#MAX_VALUE} when the
 *                     config gives no bound)
 * @see DecoderShape#tokenLimits()
 */
public record TokenLimits(int vocabSize, int maxPositions) {

    public TokenLimits {
        if (vocabSize <= 0) {
            throw new IllegalArgumentException("vocabSize must be positive, got " + vocabSize);
        }
        if (maxPositions <= 0) {
            throw new IllegalArgumentException("maxPositions must be positive, got " + maxPositions);
        }
    }

    /**
     * Checks a prompt.
     *
     * @throws IllegalArgumentException when it is empty, holds an id outside the vocabulary (naming the id, its
     *                                  position and the vocabulary size), or is longer than the positions
     */
    public void checkPrompt(long[] ids) {
        Objects.requireNonNull(ids, "prompt is null: pass the token ids");
        if (ids.length == 0) {
            throw new IllegalArgumentException("empty prompt: give at least one token id");
        }
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 && vocabSize == Integer.MAX_VALUE) {
                // vocabulary unknown (no config, no static logits width): a negative id is still never valid
                throw new IllegalArgumentException("token id " + ids[i] + " (at position " + i + " of the prompt) is "
                        + "negative; ids index the vocabulary from 0");
            }
            if (ids[i] < 0 || ids[i] >= vocabSize) {
                throw new IllegalArgumentException("token id " + ids[i] + " (at position " + i + " of the prompt) is "
                        + "outside the vocabulary: vocab_size is " + vocabSize + ", so ids are 0.." + (vocabSize - 1));
            }
        }
        if (ids.length > maxPositions) {
            throw new IllegalArgumentException("the prompt has " + ids.length + " tokens, more than the model's "
                    + maxPositions + " positions");
        }
    }

    /**
     * Checks every prompt of a batch before any forward.
     *
     * @throws IllegalArgumentException as {@link #checkPrompt}, naming the prompt's row in the batch
     */
    public void checkBatch(long[][] prompts) {
        Objects.requireNonNull(prompts, "prompts is null: pass one array of token ids per row");
        for (int r = 0; r < prompts.length; r++) {
            Objects.requireNonNull(prompts[r], "prompts[" + r + "] is null: pass the token ids of that row");
            try {
                checkPrompt(prompts[r]);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("prompt " + r + " of the batch: " + e.getMessage(), e);
            }
        }
    }

    /**
     * How many new tokens fit after a prompt of {@code promptLength}: {@code min(requested, maxPositions -
     * promptLength)}, never negative; the sequence never outgrows the positions.
     */
    public int cappedNewTokens(int promptLength, int requested) {
        return (int) Math.max(0, Math.min(requested, (long) maxPositions - promptLength));
    }
}
