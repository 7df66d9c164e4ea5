package dev.ferry.core.text;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class StopStringsTest {

    @Test
    void findsTheEarliestStopString() {
        StopStrings stops = new StopStrings(List.of("END", "\n\n"));
        assertThat(stops.find("abc\n\nEND", 0)).isEqualTo(3);
        assertThat(stops.find("abc", 0)).isEqualTo(-1);
    }

    @Test
    void holdsBackASuffixThatMayStartAStopString() {
        StopStrings stops = new StopStrings(List.of("<|user|>"));
        assertThat(stops.safeLength("Hello <|us")).isEqualTo("Hello ".length());
        assertThat(stops.safeLength("Hello <")).isEqualTo("Hello ".length());
        assertThat(stops.safeLength("Hello")).isEqualTo("Hello".length());
    }
}
