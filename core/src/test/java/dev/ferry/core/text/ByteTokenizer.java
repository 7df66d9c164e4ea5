package dev.ferry.core.text;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * A byte-level tokenizer for tests: ids 0..255 are the bytes, 256 is a special token ({@code <eos>}); decoding is
 * UTF-8 with malformed or incomplete sequences as U+FFFD, as byte-level BPE decoders do.
 */
public final class ByteTokenizer implements TextTokenizer {

    public static final long EOS = 256;

    public static long[] ids(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        long[] out = new long[b.length];
        for (int i = 0; i < b.length; i++) {
            out[i] = b[i] & 0xff;
        }
        return out;
    }

    @Override
    public long[] encode(String text, boolean addSpecialTokens) {
        return ids(text);
    }

    @Override
    public String decode(long[] ids, boolean skipSpecialTokens) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        StringBuilder out = new StringBuilder();
        for (long id : ids) {
            if (id == EOS) {
                if (!skipSpecialTokens) {
                    out.append(new String(bytes.toByteArray(), StandardCharsets.UTF_8)).append("<eos>");
                    bytes.reset();
                }
            } else {
                bytes.write((int) id);
            }
        }
        return out.append(new String(bytes.toByteArray(), StandardCharsets.UTF_8)).toString();
    }

    @Override
    public void close() {
    }
}
