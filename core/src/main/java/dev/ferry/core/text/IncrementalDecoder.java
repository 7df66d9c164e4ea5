package dev.ferry.core.text;

import java.util.Arrays;

/**
 * Turns tokens into text as they come. A byte-level BPE token may hold only part of a UTF-8 character (a CJK
 * character or an emoji split over two or three tokens); decoding it alone gives U+FFFD. So the decoder keeps a short
 * window of recent tokens, decodes the window with and without the new ones, and releases the new text only when it
 * no longer ends in an incomplete character; until then the tokens are held. The deltas concatenate to the decoding
 * of all tokens (with {@link #flush()} at the end), without decoding the whole sequence at each step.
 *
 * <p>One decoder per generation; not thread-safe.
 */
public final class IncrementalDecoder {

    private static final char REPLACEMENT = '\uFFFD';

    private final TextTokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private long[] tokens = new long[16];
    private int size;
    /** Start of the window decoded as context, so that a token's text is measured after what precedes it. */
    private int prefixOffset;
    /** End of what has been released as text. */
    private int readOffset;

    public IncrementalDecoder(TextTokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /** Adds a token; returns the text it completes ("" while a character is incomplete). */
    public String add(long token) {
        if (size == tokens.length) {
            tokens = Arrays.copyOf(tokens, size * 2);
        }
        tokens[size++] = token;
        return release(false);
    }

    /** What is still held (an incomplete character at the end, decoded as U+FFFD); "" when nothing is. */
    public String flush() {
        return release(true);
    }

    private String release(boolean force) {
        if (readOffset == size) {
            return "";
        }
        String before = decode(prefixOffset, readOffset);
        String after = decode(prefixOffset, size);
        boolean complete = after.length() > before.length() && after.charAt(after.length() - 1) != REPLACEMENT;
        if (!complete && !force) {
            return "";
        }
        String delta = after.length() > before.length() ? after.substring(before.length()) : "";
        prefixOffset = readOffset;
        readOffset = size;
        return delta;
    }

    private String decode(int from, int to) {
        return from == to ? "" : tokenizer.decode(Arrays.copyOfRange(tokens, from, to), skipSpecialTokens);
    }
}
