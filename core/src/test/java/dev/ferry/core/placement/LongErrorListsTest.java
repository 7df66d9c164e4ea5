package dev.ferry.core.placement;

import static dev.ferry.core.placement.TestModels.modelForTest;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.text.Listing;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** An error about many keys names the first few and counts the rest, instead of one line of megabytes. */
class LongErrorListsTest {

    @Test
    void aHundredThousandUnknownDeviceMapKeysGiveAShortMessageWithTheirCount() {
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("", Device.cpu());
        IntStream.range(0, 100_000).forEach(i -> map.put("no.such.module." + i, Device.cpu()));

        assertThatThrownBy(() -> DeviceMap.of(map).resolve(modelForTest())).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("100000 module(s) the model lacks")
                .hasMessageContaining("[no.such.module.0, no.such.module.1,")
                .hasMessageContaining("no.such.module.9, ... and 99,990 more]")
                .satisfies(e -> assertThat(e.getMessage()).hasSizeLessThan(1000));
    }

    @Test
    void aShortListIsShownWhole() {
        assertThat(Listing.cut(List.of("a", "b"))).isEqualTo("[a, b]");
        assertThat(Listing.cut(List.of())).isEqualTo("[]");
    }

    @Test
    void aLongListShowsTenThenTheCount() {
        List<Integer> items = IntStream.range(0, 12).boxed().toList();
        assertThat(Listing.cut(items)).isEqualTo("[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... and 2 more]");
    }
}
