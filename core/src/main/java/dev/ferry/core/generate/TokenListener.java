package dev.ferry.core.generate;

/** Told each new token as soon as it is produced, with the text it completes. */
@FunctionalInterface
public interface TokenListener {

    /**
     * @param token     the new token id
     * @param textDelta the text that became final with it: "" while it holds part of a UTF-8 character or may be the
     *                  start of a stop string, or is a special token; {@code null} when the model has no tokenizer.
     *                  The deltas of a generation concatenate to its {@link Completion#text()}.
     */
    void onToken(long token, String textDelta);

    /** Listens to nothing. */
    TokenListener NONE = (token, delta) -> { };
}
