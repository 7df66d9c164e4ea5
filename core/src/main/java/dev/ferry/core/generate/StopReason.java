package dev.ferry.core.generate;

/** Why a generation ended. */
public enum StopReason {
    /** The last new token is an end-of-sequence id (config.json's, generation_config.json's or the config's). */
    EOS,
    /** The decoded text reached a stop string of the config (left out of the text). */
    STOP_STRING,
    /** {@code maxNewTokens} tokens were made. */
    MAX_NEW_TOKENS,
    /** The model's positions ran out before {@code maxNewTokens}. */
    MAX_POSITIONS,
    /** The caller cancelled it ({@link Cancellation#cancel()}), or its time ran out. */
    CANCELLED;

    /** OpenAI's {@code finish_reason}: {@code stop} for an EOS or stop string, else {@code length}. */
    public String finishReason() {
        return this == EOS || this == STOP_STRING ? "stop" : this == CANCELLED ? "cancelled" : "length";
    }
}
