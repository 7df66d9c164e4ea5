package dev.ferry.core.text;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class IncrementalDecoderTest {

    private final ByteTokenizer tokenizer = new ByteTokenizer();

    @Test
    void holdsTokensWhileAUtf8CharacterIsIncomplete() {
        IncrementalDecoder decoder = new IncrementalDecoder(tokenizer, true);
        long[] e = ByteTokenizer.ids("é"); // two bytes, two tokens
        assertThat(decoder.add(e[0])).isEmpty();
        assertThat(decoder.add(e[1])).isEqualTo("é");
    }

    @Test
    void deltasConcatenateToTheWholeDecodingAndNeverHoldAReplacementCharacter() {
        String text = "Grüße aus Köln — 日本語 😀!";
        IncrementalDecoder decoder = new IncrementalDecoder(tokenizer, true);
        List<String> deltas = new ArrayList<>();
        for (long id : ByteTokenizer.ids(text)) {
            deltas.add(decoder.add(id));
        }
        deltas.add(decoder.flush());
        assertThat(String.join("", deltas)).isEqualTo(text);
        assertThat(deltas).noneMatch(d -> d.contains("\uFFFD"));
    }

    @Test
    void flushReleasesAnIncompleteCharacterAsTheTokenizerDecodesIt() {
        long[] partial = {0x41, 0xF0, 0x9F};  // "A" and the first two bytes of a four-byte emoji
        IncrementalDecoder decoder = new IncrementalDecoder(tokenizer, true);
        StringBuilder out = new StringBuilder();
        for (long id : partial) {
            out.append(decoder.add(id));
        }
        assertThat(out.toString()).isEqualTo("A");
        out.append(decoder.flush());
        assertThat(out.toString()).isEqualTo(tokenizer.decode(partial, true));
    }

    @Test
    void skipsSpecialTokens() {
        IncrementalDecoder decoder = new IncrementalDecoder(tokenizer, true);
        assertThat(decoder.add('o')).isEqualTo("o");
        assertThat(decoder.add(ByteTokenizer.EOS)).isEmpty();
        assertThat(decoder.flush()).isEmpty();
    }
}
