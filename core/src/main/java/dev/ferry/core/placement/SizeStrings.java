package dev.ferry.core.placement;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Memory sizes written as Accelerate writes them ({@code "10GiB"}, {@code "500MB"}, {@code "1.5GB"}), parsed with
 * the exact rules of Accelerate's {@code convert_file_size_to_int}, and bytes formatted back for people.
 *
 * <ul>
 *   <li>{@code GiB}, {@code MiB}, {@code KiB} (any case) are binary: {@code "10GiB"} = 10 × 2<sup>30</sup>.</li>
 *   <li>{@code GB}, {@code MB}, {@code KB} are decimal: {@code "1.5GB"} = 1 500 000 000.</li>
 *   <li>Accelerate's quirk, kept so a budget written for Accelerate means the same here: a decimal unit whose last
 *       letter is a lower-case {@code b} ({@code "8Gb"}, {@code "500mb"}) counts <em>bits</em>, so the byte count is
 *       divided by 8 (rounded down): {@code "8Gb"} = 10<sup>9</sup>, {@code "500mb"} = 62 500 000.</li>
 *   <li>The number may have a fraction or an exponent; the product is computed in double precision and truncated,
 *       as Python's {@code int(float(n) * unit)} does.</li>
 *   <li>A plain non-negative integer ({@code "1048576"}) is a byte count. (Accelerate takes a byte count only as
 *       an {@code int}; a Java string API takes it as digits.)</li>
 * </ul>
 * Anything else (negative sizes, unknown units, {@code "5MBB"}, {@code "5k0MB"}, NaN, infinity, sizes beyond
 * {@link Long#MAX_VALUE}) is rejected with a message that quotes the string.
 */
public final class SizeStrings {

    private static final Pattern SIZE = Pattern.compile(
            "([+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?)\\s*([A-Za-z]+)");
    private static final Pattern DIGITS = Pattern.compile("\\d+");
    private static final String[] BINARY_UNITS = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};

    private SizeStrings() {
    }

    /** Bytes of {@code size}; see the class comment for the accepted forms. */
    public static long parse(String size) {
        if (size == null) {
            throw new IllegalArgumentException("size is null; " + expected());
        }
        String s = size.trim();
        if (DIGITS.matcher(s).matches()) {
            try {
                return Long.parseLong(s);
            } catch (NumberFormatException e) {
                throw bad(size, "larger than " + Long.MAX_VALUE + " bytes");
            }
        }
        Matcher m = SIZE.matcher(s);
        if (!m.matches()) {
            throw bad(size, null);
        }
        double number = Double.parseDouble(m.group(1));
        String unit = m.group(2);
        double multiplier;
        boolean bits = false;
        switch (unit.toUpperCase(Locale.ROOT)) {
            case "GIB" -> multiplier = 0x1p30;
            case "MIB" -> multiplier = 0x1p20;
            case "KIB" -> multiplier = 0x1p10;
            case "GB" -> { multiplier = 1e9; bits = unit.endsWith("b"); }
            case "MB" -> { multiplier = 1e6; bits = unit.endsWith("b"); }
            case "KB" -> { multiplier = 1e3; bits = unit.endsWith("b"); }
            default -> throw bad(size, "unknown unit '" + unit + "'");
        }
        double bytes = number * multiplier;
        if (bytes < 0 || number < 0) {
            throw bad(size, "a size cannot be negative");
        }
        if (bytes >= 0x1p63) {
            throw bad(size, "larger than " + Long.MAX_VALUE + " bytes");
        }
        long whole = (long) bytes;
        return bits ? whole / 8 : whole;
    }

    /**
     * Bytes of a JSON-style value: an integral {@link Number} is a byte count, a {@link CharSequence} is parsed by
     * {@link #parse(String)}.
     */
    public static long parse(Object size) {
        if (size instanceof CharSequence cs) {
            return parse(cs.toString());
        }
        if (size instanceof Byte || size instanceof Short || size instanceof Integer || size instanceof Long) {
            long v = ((Number) size).longValue();
            if (v < 0) {
                throw bad(String.valueOf(size), "a size cannot be negative");
            }
            return v;
        }
        if (size instanceof Number n && n.doubleValue() >= 0 && n.doubleValue() < 0x1p63
                && n.doubleValue() == Math.rint(n.doubleValue())) {
            return (long) n.doubleValue();
        }
        throw bad(String.valueOf(size), null);
    }

    /**
     * A readable size in binary units with two decimals: {@code 512 B}, {@code 1.50 KiB}, {@code 80.00 GiB}.
     * The result parses back with {@link #parse(String)} to within the rounding of the last digit.
     */
    public static String format(long bytes) {
        if (bytes < 0) {
            return "-" + format(bytes == Long.MIN_VALUE ? Long.MAX_VALUE : -bytes);
        }
        if (bytes < 1024) {
            return bytes + " B";
        }
        double v = bytes;
        int unit = -1;
        while (v >= 1024 && unit < BINARY_UNITS.length - 1) {
            v /= 1024;
            unit++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, BINARY_UNITS[unit]);
    }

    private static IllegalArgumentException bad(String size, String why) {
        return new IllegalArgumentException("size '" + size + "' is not valid"
                + (why == null ? "" : " (" + why + ")") + "; " + expected());
    }

    private static String expected() {
        return "expected a byte count or a number with a unit such as '10GiB', '500MB', '1.5GB', '512KiB'";
    }
}
