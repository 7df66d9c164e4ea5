package dev.ferry.cli;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * "Did you mean" for a mistyped option or command: {@code --max-memroy} → {@code --max-memory}, {@code plam} →
 * {@code plan}. The nearest names by edit distance (Damerau: a swap of two neighbours counts one), within a third of
 * the typed word's length, so a word that resembles nothing gets no suggestion.
 */
final class Suggestions {

    private Suggestions() {
    }

    /** The message of a bad-usage exception, with a suggestion when it is an unknown option or command. */
    static String message(CommandLine.ParameterException ex) {
        if (!(ex instanceof CommandLine.UnmatchedArgumentException u) || u.getUnmatched().isEmpty()) {
            return ex.getMessage();
        }
        CommandSpec spec = ex.getCommandLine().getCommandSpec();
        String first = u.getUnmatched().get(0);
        if (first.startsWith("-")) {
            String typed = first.contains("=") ? first.substring(0, first.indexOf('=')) : first;
            List<String> names = new ArrayList<>();
            for (OptionSpec o : spec.options()) {
                if (!o.hidden()) {
                    names.addAll(List.of(o.names()));
                }
            }
            List<String> near = nearest(typed, names);
            return near.isEmpty() ? "unknown option '" + typed + "'"
                    : "unknown option '" + typed + "'; did you mean " + String.join(" or ", near) + "?";
        }
        if (!spec.subcommands().isEmpty()) {
            List<String> commands = new ArrayList<>(spec.subcommands().keySet());
            List<String> near = nearest(first, commands);
            return "unknown command '" + first + "'" + (near.isEmpty() ? " (commands: " + String.join(", ", commands)
                    + ")" : "; did you mean " + String.join(" or ", near) + "?");
        }
        return ex.getMessage();
    }

    /** The names nearest to {@code typed}, at most two, none further than a third of its length (at least 1). */
    static List<String> nearest(String typed, List<String> names) {
        String t = typed.toLowerCase(Locale.ROOT);
        int limit = Math.max(1, t.replaceFirst("^-+", "").length() / 3);
        int best = Integer.MAX_VALUE;
        List<String> out = new ArrayList<>();
        for (String name : names.stream().distinct().sorted(Comparator.naturalOrder()).toList()) {
            int d = distance(t, name.toLowerCase(Locale.ROOT));
            if (d > limit || d > best) {
                continue;
            }
            if (d < best) {
                best = d;
                out.clear();
            }
            out.add(name);
        }
        return out.size() > 2 ? out.subList(0, 2) : out;
    }

    /** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
    static int distance(String a, String b) {
        int[][] d = new int[a.length() + 1][b.length() + 1];
        for (int i = 0; i <= a.length(); i++) {
            d[i][0] = i;
        }
        for (int j = 0; j <= b.length(); j++) {
            d[0][j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                d[i][j] = Math.min(Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
                if (i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2) && a.charAt(i - 2) == b.charAt(j - 1)) {
                    d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
                }
            }
        }
        return d[a.length()][b.length()];
    }
}
