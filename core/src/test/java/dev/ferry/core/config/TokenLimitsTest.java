package dev.ferry.core.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** Ids are checked against the vocabulary, prompts against the positions; new tokens are capped. */
class TokenLimitsTest {

    static final TokenLimits LIMITS = new TokenLimits(256, 128);

    @Test
    void idAtTheVocabularySizeIsRefusedNamingIdAndSize() {
        assertThatThrownBy(() -> LIMITS.checkPrompt(new long[] {1, 256}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("token id 256").hasMessageContaining("position 1")
                .hasMessageContaining("vocab_size is 256");
    }

    @Test
    void negativeIdIsRefused() {
        assertThatThrownBy(() -> LIMITS.checkPrompt(new long[] {-1}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id -1")
                .hasMessageContaining("256");
    }

    @Test
    void promptLongerThanThePositionsIsRefused() {
        assertThatThrownBy(() -> LIMITS.checkPrompt(new long[129]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("129 tokens")
                .hasMessageContaining("128 positions");
    }

    @Test
    void emptyPromptIsRefused() {
        assertThatThrownBy(() -> LIMITS.checkPrompt(new long[0])).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("empty prompt");
    }

    @Test
    void promptFillingThePositionsIsAccepted() {
        LIMITS.checkPrompt(new long[128]);
    }

    @Test
    void newTokensAreCappedByThePositionsLeft() {
        assertThat(LIMITS.cappedNewTokens(8, 1_000_000_000)).isEqualTo(120);
        assertThat(LIMITS.cappedNewTokens(8, 5)).isEqualTo(5);
        assertThat(LIMITS.cappedNewTokens(128, 5)).isZero();
    }

    @Test
    void negativeIdIsRefusedEvenWhenTheVocabularyIsUnknown() {
        assertThatThrownBy(() -> new TokenLimits(Integer.MAX_VALUE, Integer.MAX_VALUE).checkPrompt(new long[] {3, -7}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id -7")
                .hasMessageContaining("negative");
    }
}
