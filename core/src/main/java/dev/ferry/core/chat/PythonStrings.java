package dev.ferry.core.chat;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Python's {@code str} methods on strings, as chat templates call them in Jinja ({@code content.strip()},
 * {@code content.split('</think>')[-1].lstrip('\n')}, {@code role.startswith('tool')}): Jinjava would look for Java
 * methods of these names and find none. Other calls fall through to Jinjava's own resolver.
 */
final class PythonStrings extends ELResolver {

    private static final Set<String> METHODS = Set.of("strip", "lstrip", "rstrip", "startswith", "endswith",
            "split", "upper", "lower", "title", "capitalize", "replace", "find", "count", "join", "isdigit",
            "isspace", "isalpha", "splitlines");

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(base instanceof String s) || method == null || !METHODS.contains(method.toString())) {
            return null;
        }
        Object[] p = params == null ? new Object[0] : params;
        Object result = call(s, method.toString(), p);
        context.setPropertyResolved(true);
        return result;
    }

    static Object call(String s, String method, Object[] p) {
        switch (method) {
            case "strip":
                return rstrip(lstrip(s, chars(p)), chars(p));
            case "lstrip":
                return lstrip(s, chars(p));
            case "rstrip":
                return rstrip(s, chars(p));
            case "startswith":
                return anyOf(p[0], prefix -> s.startsWith(prefix));
            case "endswith":
                return anyOf(p[0], suffix -> s.endsWith(suffix));
            case "split":
                return split(s, p.length > 0 && p[0] != null ? p[0].toString() : null,
                        p.length > 1 ? ((Number) p[1]).intValue() : -1);
            case "splitlines":
                return List.of(s.split("\r\n|\r|\n"));
            case "upper":
                return s.toUpperCase();
            case "lower":
                return s.toLowerCase();
            case "title":
                return title(s);
            case "capitalize":
                return s.isEmpty() ? s : s.substring(0, 1).toUpperCase() + s.substring(1).toLowerCase();
            case "replace":
                return replace(s, p[0].toString(), p[1].toString(), p.length > 2 ? ((Number) p[2]).intValue() : -1);
            case "find":
                return (long) s.indexOf(p[0].toString());
            case "count":
                return (long) count(s, p[0].toString());
            case "join":
                List<String> parts = new ArrayList<>();
                for (Object o : (Iterable<?>) p[0]) {
                    parts.add(String.valueOf(o));
                }
                return String.join(s, parts);
            case "isdigit":
                return !s.isEmpty() && s.chars().allMatch(Character::isDigit);
            case "isspace":
                return !s.isEmpty() && s.chars().allMatch(Character::isWhitespace);
            case "isalpha":
                return !s.isEmpty() && s.chars().allMatch(Character::isLetter);
            default:
                throw new IllegalStateException(method);
        }
    }

    /** The characters to strip; {@code null} is whitespace, as Python's. */
    private static String chars(Object[] p) {
        return p.length > 0 && p[0] != null ? p[0].toString() : null;
    }

    private static boolean strippable(char c, String chars) {
        return chars == null ? Character.isWhitespace(c) : chars.indexOf(c) >= 0;
    }

    private static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && strippable(s.charAt(i), chars)) {
            i++;
        }
        return s.substring(i);
    }

    private static String rstrip(String s, String chars) {
        int i = s.length();
        while (i > 0 && strippable(s.charAt(i - 1), chars)) {
            i--;
        }
        return s.substring(0, i);
    }

    private static boolean anyOf(Object arg, java.util.function.Predicate<String> test) {
        if (arg instanceof Iterable<?> many) { // Python's str.startswith takes a tuple
            for (Object o : many) {
                if (test.test(o.toString())) {
                    return true;
                }
            }
            return false;
        }
        return test.test(arg.toString());
    }

    /** Python's split: on a separator exactly, or (none given) on runs of whitespace with empty ends dropped. */
    private static List<String> split(String s, String sep, int max) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            for (String part : s.strip().split("\\s+", max < 0 ? 0 : max + 1)) {
                if (!part.isEmpty()) {
                    out.add(part);
                }
            }
            return out;
        }
        if (sep.isEmpty()) {
            throw new IllegalArgumentException("empty separator");
        }
        int from = 0;
        int at;
        while ((max < 0 || out.size() < max) && (at = s.indexOf(sep, from)) >= 0) {
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    private static String replace(String s, String old, String with, int max) {
        if (max < 0) {
            return s.replace(old, with);
        }
        StringBuilder b = new StringBuilder();
        int from = 0;
        int at;
        int done = 0;
        while (done < max && !old.isEmpty() && (at = s.indexOf(old, from)) >= 0) {
            b.append(s, from, at).append(with);
            from = at + old.length();
            done++;
        }
        return b.append(s.substring(from)).toString();
    }

    private static int count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.length() + 1;
        }
        int n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
        }
        return n;
    }

    private static String title(String s) {
        StringBuilder b = new StringBuilder(s.length());
        boolean start = true;
        for (char c : s.toCharArray()) {
            b.append(start ? Character.toUpperCase(c) : Character.toLowerCase(c));
            start = !Character.isLetter(c);
        }
        return b.toString();
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
        // not ours: left to the next resolver
    }
}
