package dev.ferry.cli;

import java.util.Collection;

/** Why generation stopped, the same on both backends ({@code "stopped"} in {@code generate}'s JSON). */
enum StopReason {
    /** The last new token is an end-of-sequence id (it is kept). */
    EOS("eos"),
    /** {@code --max-new-tokens} tokens were made. */
    MAX_NEW_TOKENS("max_new_tokens"),
    /** The model's positions ran out before {@code --max-new-tokens} was reached. */
    MAX_POSITIONS("max_positions");

    private final String json;

    StopReason(String json) {
        this.json = json;
    }

    /** The name in JSON and text output. */
    String json() {
        return json;
    }

    /**
     * @param tokens    the new tokens
     * @param eos       the end-of-sequence ids generation stopped at
     * @param requested {@code --max-new-tokens} as given
     * @param allowed   what the positions left after the prompt, capped to {@code requested}
     */
    static StopReason of(long[] tokens, Collection<Long> eos, int requested, int allowed) {
        if (tokens.length > 0 && eos.contains(tokens[tokens.length - 1])) {
            return EOS;
        }
        return allowed < requested && tokens.length >= allowed ? MAX_POSITIONS : MAX_NEW_TOKENS;
    }
}
