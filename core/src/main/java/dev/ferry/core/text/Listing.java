package dev.ferry.core.text;

import java.util.Collection;
import java.util.Iterator;

/**
 * Lists in error messages, cut to a readable length: {@code [a, b, c, ... and 99,990 more]}. A message naming every
 * one of 100,000 bad keys is megabytes on one line; the first few and the count say the same.
 */
public final class Listing {

    /** How many items an error message names before the count. */
    public static final int SHOWN = 10;

    private Listing() {
    }

    /** The first {@link #SHOWN} items of {@code items}, then how many more. */
    public static String cut(Collection<?> items) {
        return cut(items, SHOWN);
    }

    /** The first {@code shown} items, then {@code ... and N more} (N with thousands separators). */
    public static String cut(Collection<?> items, int shown) {
        StringBuilder sb = new StringBuilder("[");
        Iterator<?> it = items.iterator();
        for (int i = 0; i < shown && it.hasNext(); i++) {
            sb.append(i == 0 ? "" : ", ").append(it.next());
        }
        if (items.size() > shown) {
            sb.append(", ... and ").append(String.format(java.util.Locale.ROOT, "%,d", items.size() - shown))
                    .append(" more");
        }
        return sb.append(']').toString();
    }
}
