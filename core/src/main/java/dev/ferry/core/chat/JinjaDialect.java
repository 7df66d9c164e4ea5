package dev.ferry.core.chat;

/**
 * Rewrites the few constructs of Python's Jinja that Jinjava parses differently into equivalents it parses as Python
 * does; everything else of a template is left as written. Each rewrite keeps the template's meaning:
 * <ul>
 *   <li>{@code seq[::-1]} (a reversed copy) becomes {@code (seq|reverse)}: Jinjava's slices take no step;</li>
 *   <li>a keyword argument's value is put in parentheses, {@code namespace(i=messages|length - 1)} becoming
 *       {@code namespace(i=(messages|length - 1))}: Jinjava binds {@code =} tighter than {@code -} there.</li>
 * </ul>
 * Only text inside {@code {{ }}} and {@code {% %}} is touched, never string literals.
 */
final class JinjaDialect {

    private JinjaDialect() {
    }

    static String adapt(String source) {
        StringBuilder out = new StringBuilder(source.length() + 64);
        int i = 0;
        while (i < source.length()) {
            int open = nextTag(source, i);
            if (open < 0) {
                out.append(source, i, source.length());
                break;
            }
            out.append(source, i, open + 2);
            String close = source.charAt(open + 1) == '{' ? "}}" : "%}";
            int end = tagEnd(source, open + 2, close);
            out.append(adaptExpression(source.substring(open + 2, end)));
            i = end;
        }
        return out.toString();
    }

    private static int nextTag(String s, int from) {
        int a = s.indexOf("{{", from);
        int b = s.indexOf("{%", from);
        return a < 0 ? b : b < 0 ? a : Math.min(a, b);
    }

    /** Where the tag closes, skipping string literals. */
    private static int tagEnd(String s, int from, String close) {
        char quote = 0;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (s.startsWith(close, i)) {
                return i;
            }
        }
        return s.length();
    }

    private static String adaptExpression(String e) {
        StringBuilder out = new StringBuilder(e.length() + 16);
        // depth of brackets, and for each open call level whether a keyword value is open there
        int depth = 0;
        boolean[] keywordOpen = new boolean[64];
        char quote = 0;
        for (int i = 0; i < e.length(); i++) {
            char c = e.charAt(i);
            if (quote != 0) {
                out.append(c);
                if (c == '\\' && i + 1 < e.length()) {
                    out.append(e.charAt(++i));
                } else if (c == quote) {
                    quote = 0;
                }
                continue;
            }
            if (c == '\'' || c == '"') {
                quote = c;
                out.append(c);
            } else if (e.startsWith("[::-1]", i)) {
                out.append("|reverse");
                i += 5;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
                if (depth < keywordOpen.length) {
                    keywordOpen[depth] = false;
                }
                out.append(c);
            } else if (c == ')' || c == ']' || c == '}') {
                if (depth > 0 && depth < keywordOpen.length && keywordOpen[depth]) {
                    out.append(')');
                    keywordOpen[depth] = false;
                }
                depth = Math.max(0, depth - 1);
                out.append(c);
            } else if (c == ',' && depth > 0 && depth < keywordOpen.length && keywordOpen[depth]) {
                out.append(')').append(c);
                keywordOpen[depth] = false;
            } else if (c == '=' && depth > 0 && depth < keywordOpen.length && isKeywordEquals(e, i)) {
                out.append("=(");
                keywordOpen[depth] = true;
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    /** A single {@code =} after an identifier (not {@code ==}, {@code !=}, {@code <=}, {@code >=}). */
    private static boolean isKeywordEquals(String e, int i) {
        if (i + 1 < e.length() && e.charAt(i + 1) == '=') {
            return false;
        }
        int j = i - 1;
        while (j >= 0 && e.charAt(j) == ' ') {
            j--;
        }
        if (j < 0 || !(Character.isLetterOrDigit(e.charAt(j)) || e.charAt(j) == '_')) {
            return false;
        }
        return true;
    }
}
