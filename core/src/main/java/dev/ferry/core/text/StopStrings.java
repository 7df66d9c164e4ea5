package dev.ferry.core.text;

import java.util.List;

/**
 * Finds stop strings in generated text as it grows. A stop string may arrive split over several deltas, so text
 * that could be the start of one is held back ({@link #safeLength}) until it is known either way.
 */
public final class StopStrings {

    private final List<String> stops;

    public StopStrings(List<String> stops) {
        this.stops = List.copyOf(stops);
    }

    public boolean isEmpty() {
        return stops.isEmpty();
    }

    /** Where the first stop string starts in {@code text}, searching from {@code from}; -1 when none occurs. */
    public int find(CharSequence text, int from) {
        String s = text.toString();
        int best = -1;
        for (String stop : stops) {
            int at = s.indexOf(stop, Math.max(0, from));
            if (at >= 0 && (best < 0 || at < best)) {
                best = at;
            }
        }
        return best;
    }

    /** How much of {@code text} can be released: all but its longest suffix that starts some stop string. */
    public int safeLength(CharSequence text) {
        int n = text.length();
        int held = 0;
        for (String stop : stops) {
            for (int k = Math.min(stop.length() - 1, n); k > held; k--) {
                if (stop.regionMatches(0, text.toString(), n - k, k)) {
                    held = k;
                    break;
                }
            }
        }
        return n - held;
    }

    /** The longest stop string, in chars (how far back a new delta may complete one). */
    public int longest() {
        return stops.stream().mapToInt(String::length).max().orElse(0);
    }
}
