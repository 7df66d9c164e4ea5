package dev.ferry.cli;

/** Decoded text shown on a terminal. */
final class Texts {

    private Texts() {
    }

    /**
     * {@code text} in double quotes with control characters, quotes and backslashes escaped ({@code \n},
     * {@code \x04}), so that bytes a model made up cannot move the cursor or ring the bell.
     */
    static String quoted(String text) {
        StringBuilder sb = new StringBuilder("\"");
        text.codePoints().forEach(c -> {
            switch (c) {
                case '\n' -> sb.append("\\n");
                case '\t' -> sb.append("\\t");
                case '\r' -> sb.append("\\r");
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                default -> {
                    if (Character.isISOControl(c) || Character.getType(c) == Character.FORMAT) {
                        sb.append(c <= 0xff ? String.format("\\x%02x", c) : String.format("\\u%04x", c));
                    } else {
                        sb.appendCodePoint(c);
                    }
                }
            }
        });
        return sb.append('"').toString();
    }
}
