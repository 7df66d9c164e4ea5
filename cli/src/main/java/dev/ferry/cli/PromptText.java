package dev.ferry.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Prompt text from a file or standard input, decoded as UTF-8 whatever the locale (the JVM decodes command-line
 * arguments with {@code sun.jnu.encoding}, so under {@code LANG=C} a non-ASCII {@code --prompt} reaches Ferry with its
 * characters replaced); and the check that says when that happened.
 */
final class PromptText {

    private PromptText() {
    }

    /**
     * The text of {@code file} ({@code -}: {@code stdin}) as UTF-8; one final line break ({@code \n} or {@code \r\n})
     * is dropped, as a shell's {@code $(cat file)} would. Only a regular file or standard input is read.
     *
     * @throws UsageException naming the file when it is missing, not a regular file, or not valid UTF-8
     */
    static String read(String file, InputStream stdin) {
        byte[] bytes;
        String name = file.equals("-") ? "standard input" : file;
        try {
            if (file.equals("-")) {
                bytes = stdin.readAllBytes();
            } else {
                Path p = Path.of(file);
                if (!Files.isRegularFile(p)) {
                    throw new UsageException("--prompt-file: " + file + (Files.exists(p) ? " is not a regular file"
                            : ": no such file"));
                }
                bytes = Files.readAllBytes(p);
            }
        } catch (IOException e) {
            throw new UsageException("--prompt-file: cannot read " + name + ": " + e.getMessage(), e);
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new UsageException("--prompt-file: " + name + " is not valid UTF-8 text", e);
        }
        if (text.endsWith("\r\n")) {
            text = text.substring(0, text.length() - 2);
        } else if (text.endsWith("\n")) {
            text = text.substring(0, text.length() - 1);
        }
        if (text.isEmpty()) {
            throw new UsageException("--prompt-file: " + name + " is empty");
        }
        return text;
    }

    /**
     * One warning per argument that the locale probably mangled: when the JVM decodes arguments with
     * {@code encoding} (its {@code sun.jnu.encoding}) other than UTF-8, characters it cannot represent arrive as
     * U+FFFD or {@code ?}. Empty when {@code encoding} is UTF-8 or no argument holds either.
     */
    static List<String> localeWarnings(String[] args, String encoding) {
        List<String> out = new ArrayList<>();
        if (encoding == null || encoding.replace("-", "").equalsIgnoreCase("UTF8")) {
            return out;
        }
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.indexOf('\uFFFD') >= 0 || (a.indexOf('?') >= 0 && i > 0 && args[i - 1].startsWith("--prompt"))) {
                String option = i > 0 && args[i - 1].startsWith("--") ? args[i - 1] : "argument " + (i + 1);
                out.add("warning: " + option + " holds " + (a.indexOf('\uFFFD') >= 0 ? "U+FFFD (\uFFFD)" : "'?'")
                        + " and this JVM decodes arguments as " + encoding + " (not UTF-8): non-ASCII characters were "
                        + "probably replaced. Run under a UTF-8 locale (LANG=C.UTF-8) or pass the text with "
                        + "--prompt-file FILE or --prompt-file - (read as UTF-8)");
            }
        }
        return out;
    }
}
