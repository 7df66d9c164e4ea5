package dev.ferry.tokenizers;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.ferry.core.text.TextTokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * Core's {@link TextTokenizer} over DJL's binding of Hugging Face tokenizers; never truncates nor pads. The one
 * implementation both backends give a model folder's {@code tokenizer.json} to.
 */
public final class DjlTextTokenizer implements TextTokenizer {

    private final HuggingFaceTokenizer tokenizer;

    private DjlTextTokenizer(HuggingFaceTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** The tokenizer of {@code tokenizerJson}; an unreadable file is an {@link UncheckedIOException} naming it. */
    public static TextTokenizer open(Path tokenizerJson) {
        try {
            return new DjlTextTokenizer(HuggingFaceTokenizer.newInstance(tokenizerJson,
                    Map.of("truncation", "false", "padding", "false")));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tokenizer " + tokenizerJson + ": " + e.getMessage(), e);
        }
    }

    @Override
    public long[] encode(String text, boolean addSpecialTokens) {
        return tokenizer.encode(text, addSpecialTokens, false).getIds();
    }

    @Override
    public String decode(long[] ids, boolean skipSpecialTokens) {
        return tokenizer.decode(ids, skipSpecialTokens);
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
