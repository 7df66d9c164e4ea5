package dev.ferry.core.text;

/**
 * Text to token ids and back, as Hugging Face tokenizers do it for a model folder's {@code tokenizer.json}. Each
 * backend supplies one (through DJL's binding of the Rust {@code tokenizers} library); core's text generation, stop
 * strings and chat templates work over this interface. Implementations are safe to call from several threads.
 */
public interface TextTokenizer extends AutoCloseable {

    /**
     * The ids of {@code text}.
     *
     * @param addSpecialTokens whether the tokenizer's post-processor adds its special tokens (a BOS, say); a rendered
     *                         chat template already holds them, so chat prompts are encoded without
     */
    long[] encode(String text, boolean addSpecialTokens);

    /** The text of {@code ids}; special tokens (EOS, chat markers) left out when {@code skipSpecialTokens}. */
    String decode(long[] ids, boolean skipSpecialTokens);

    @Override
    void close();
}
