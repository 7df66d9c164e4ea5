package dev.ferry.core.placement;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Accelerate's test_convert_file_size and the quirks of convert_file_size_to_int. */
class SizeStringsTest {

    @Test
    void zeroMegabytesIsZero() {
        assertThat(SizeStrings.parse("0MB")).isZero();
    }

    @Test
    void megabytesAreDecimal() {
        assertThat(SizeStrings.parse("100MB")).isEqualTo(100_000_000L);
        assertThat(SizeStrings.parse("500MB")).isEqualTo(500_000_000L);
    }

    @Test
    void gibibytesAreBinary() {
        assertThat(SizeStrings.parse("2GiB")).isEqualTo(2L << 30);
        assertThat(SizeStrings.parse("10GiB")).isEqualTo(10L << 30);
    }

    @Test
    void binaryUnitsIgnoreCase() {
        assertThat(SizeStrings.parse("10gib")).isEqualTo(10L << 30);
        assertThat(SizeStrings.parse("3mib")).isEqualTo(3L << 20);
    }

    @Test
    void kibibytesAreBinary() {
        assertThat(SizeStrings.parse("512KiB")).isEqualTo(512L << 10);
        assertThat(SizeStrings.parse("1.5KiB")).isEqualTo(1536L);
    }

    @Test
    void fractionalGigabytesAreTruncatedDecimal() {
        assertThat(SizeStrings.parse("1.5GB")).isEqualTo(1_500_000_000L);
    }

    @Test
    void kilobytesAreDecimal() {
        assertThat(SizeStrings.parse("100KB")).isEqualTo(100_000L);
        assertThat(SizeStrings.parse("12KB")).isEqualTo(12_000L);
    }

    @Test
    void fractionIsTruncatedAsPythonIntOfFloat() {
        // Python: int(float("4.1") * 10**6) == 4099999
        assertThat(SizeStrings.parse("4.1MB")).isEqualTo(4_099_999L);
    }

    @Test
    void lowerCaseBMeansBitsAsInAccelerate() {
        assertThat(SizeStrings.parse("8Gb")).isEqualTo(1_000_000_000L);
        assertThat(SizeStrings.parse("500mb")).isEqualTo(62_500_000L);
        assertThat(SizeStrings.parse("1kb")).isEqualTo(125L);
    }

    @Test
    void exponentIsAccepted() {
        assertThat(SizeStrings.parse("1e3MB")).isEqualTo(1_000_000_000L);
    }

    @Test
    void plainDigitsAreBytes() {
        assertThat(SizeStrings.parse("1048576")).isEqualTo(1_048_576L);
    }

    @Test
    void integralNumbersAreBytes() {
        assertThat(SizeStrings.parse((Object) 500)).isEqualTo(500L);
        assertThat(SizeStrings.parse((Object) 85_899_345_920L)).isEqualTo(85_899_345_920L);
    }

    @Test
    void stringObjectIsParsed() {
        assertThat(SizeStrings.parse((Object) "1GiB")).isEqualTo(1L << 30);
    }

    @ParameterizedTest
    @ValueSource(strings = {"5MBB", "5k0MB", "-1GB", "", "GB", "10 bytes", "nanGB", "infGB", "1.5", "5TB",
            "0x10MB", "5dMB", "99999999999GiB", "99999999999999999999"})
    void badStringIsRejectedWithTheStringInTheMessage(String bad) {
        assertThatThrownBy(() -> SizeStrings.parse(bad))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'" + bad + "'");
    }

    @Test
    void negativeNumberIsRejected() {
        assertThatThrownBy(() -> SizeStrings.parse((Object) (-5)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'-5'");
    }

    @Test
    void formatsSmallSizesInBytes() {
        assertThat(SizeStrings.format(0)).isEqualTo("0 B");
        assertThat(SizeStrings.format(1023)).isEqualTo("1023 B");
    }

    @Test
    void formatsInBinaryUnitsWithTwoDecimals() {
        assertThat(SizeStrings.format(1536)).isEqualTo("1.50 KiB");
        assertThat(SizeStrings.format(80L << 30)).isEqualTo("80.00 GiB");
        assertThat(SizeStrings.format(811_706_778_112L)).isEqualTo("755.96 GiB");
    }

    @Test
    void formattedSizeParsesBack() {
        assertThat(SizeStrings.parse(SizeStrings.format(3L << 30))).isEqualTo(3L << 30);
        assertThat(SizeStrings.parse(SizeStrings.format(1536))).isEqualTo(1536L);
    }
}
