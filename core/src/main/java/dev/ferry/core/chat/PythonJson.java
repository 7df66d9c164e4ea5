package dev.ferry.core.chat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * JSON as Python's {@code json.dumps(x, ensure_ascii=False)} writes it: {@code ", "} and {@code ": "} between items
 * (or {@code ","} and newlines with an indent), non-ASCII text as is. Chat templates render tool schemas with it, so
 * the prompt's bytes (and tokens) depend on this exact form.
 */
final class PythonJson {

    private PythonJson() {
    }

    static String dumps(Object value, Integer indent, boolean sortKeys) {
        StringBuilder b = new StringBuilder();
        write(b, value, indent, sortKeys, 0);
        return b.toString();
    }

    private static void write(StringBuilder b, Object v, Integer indent, boolean sortKeys, int level) {
        if (v == null) {
            b.append("null");
        } else if (v instanceof String s) {
            string(b, s);
        } else if (v instanceof Boolean bool) {
            b.append(bool ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            b.append(d == Math.rint(d) && Math.abs(d) < 1e16 ? String.format("%.1f", d) : Double.toString(d));
        } else if (v instanceof Number n) {
            b.append(n);
        } else if (v instanceof Map<?, ?> map) {
            List<Map.Entry<?, ?>> entries = new ArrayList<>(map.entrySet());
            if (sortKeys) {
                entries.sort((x, y) -> String.valueOf(x.getKey()).compareTo(String.valueOf(y.getKey())));
            }
            if (entries.isEmpty()) {
                b.append("{}");
                return;
            }
            b.append('{');
            for (int i = 0; i < entries.size(); i++) {
                separator(b, i, indent, level + 1);
                string(b, String.valueOf(entries.get(i).getKey()));
                b.append(": ");
                write(b, entries.get(i).getValue(), indent, sortKeys, level + 1);
            }
            close(b, indent, level);
            b.append('}');
        } else if (v instanceof Iterable<?> list) {
            List<Object> items = new ArrayList<>();
            list.forEach(items::add);
            if (items.isEmpty()) {
                b.append("[]");
                return;
            }
            b.append('[');
            for (int i = 0; i < items.size(); i++) {
                separator(b, i, indent, level + 1);
                write(b, items.get(i), indent, sortKeys, level + 1);
            }
            close(b, indent, level);
            b.append(']');
        } else {
            string(b, v.toString());
        }
    }

    private static void separator(StringBuilder b, int i, Integer indent, int level) {
        if (indent == null) {
            if (i > 0) {
                b.append(", ");
            }
        } else {
            if (i > 0) {
                b.append(',');
            }
            b.append('\n').append(" ".repeat(indent * level));
        }
    }

    private static void close(StringBuilder b, Integer indent, int level) {
        if (indent != null) {
            b.append('\n').append(" ".repeat(indent * level));
        }
    }

    private static void string(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\b' -> b.append("\\b");
                case '\f' -> b.append("\\f");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        b.append('"');
    }
}
