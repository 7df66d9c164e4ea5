package dev.ferry.onnx;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.GenerationLoop;
import dev.ferry.core.generate.LanguageModel;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.text.ModelText;
import dev.ferry.core.weights.OffloadFolder;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A causal LM loaded and dispatched on ONNX Runtime by {@link dev.ferry.core.load.Ferry}: an
 * {@link OnnxDispatchedModel} (one session per unit of the plan) decoded by core's {@link GenerationLoop} through
 * {@link OnnxCausalLm}. Thread-safe as {@link DispatchedModel} says: runs are serialised on the model.
 */
public final class OnnxLoadedModel implements DispatchedModel {

    private final OnnxDispatchedModel dispatched;
    private final OnnxCausalLm lm;
    private final DeviceMap map;
    private final OffloadFolder folder;
    private final Path dir;
    private HuggingFaceTokenizer tokenizer;
    private final ModelText text;
    private volatile boolean closed;

    OnnxLoadedModel(OnnxDispatchedModel dispatched, OnnxCausalLm lm, DeviceMap map, OffloadFolder folder, Path dir) {
        this.dispatched = dispatched;
        this.lm = lm;
        this.map = map;
        this.folder = folder;
        this.dir = dir;
        this.text = ModelText.of(dir, lm.eosTokenIds(), DjlTextTokenizer::open);
    }

    @Override
    public String backend() {
        return "onnx";
    }

    @Override
    public DeviceMap deviceMap() {
        return map;
    }

    @Override
    public DispatchReport report() {
        return dispatched.report().core();
    }

    /** The ONNX report: partitions, sessions, prefetch, open ORT objects. */
    public OnnxDispatchReport onnxReport() {
        return dispatched.report();
    }

    /** The dispatched graph itself (to run it with inputs of your own). */
    public OnnxDispatchedModel dispatched() {
        return dispatched;
    }

    @Override
    public LanguageModel languageModel() {
        return lm;
    }

    @Override
    public ModelText text() {
        open();
        return text;
    }

    @Override
    public long[] generate(long[] prompt, GenerationConfig config) {
        open();
        return GenerationLoop.generate(lm, prompt, text.withEos(config));
    }

    @Override
    public long[][] generate(long[][] prompts, GenerationConfig config) {
        open();
        return GenerationLoop.generate(lm, prompts, text.withEos(config));
    }

    @Override
    public String generate(String prompt, GenerationConfig config) {
        open();
        HuggingFaceTokenizer t = tokenizer();
        return t.decode(generate(t.encode(prompt).getIds(), config), true);
    }

    @Override
    public float[][] logits(long[] ids) {
        open();
        return lm.logits(ids);
    }

    /**
     * For an encoder export (no {@code logits} output, e.g. all-MiniLM-L6-v2): the rows right-padded and masked into
     * one run, mean-pooled ({@link OnnxEncoder}). A causal-LM export gives logits only.
     *
     * @throws UnsupportedOperationException for a causal-LM export
     */
    @Override
    public float[][] embed(long[][] prompts) {
        open();
        if (!OnnxEncoder.isEncoder(dispatched)) {
            throw new UnsupportedOperationException("embed: this ONNX export gives logits, not hidden states; load "
                    + "the model with backend(\"pytorch\") to pool a causal LM's hidden states, or use an encoder export");
        }
        return OnnxEncoder.meanPooled(dispatched, prompts);
    }

    private synchronized HuggingFaceTokenizer tokenizer() {
        if (closed) {
            throw new IllegalStateException("the model is closed");
        }
        if (tokenizer == null) {
            Path file = dir.resolve("tokenizer.json");
            if (!Files.isRegularFile(file)) {
                throw new IllegalStateException("no tokenizer: " + dir + " has no tokenizer.json; pass token ids");
            }
            try {
                tokenizer = HuggingFaceTokenizer.newInstance(file, Map.of("truncation", "false", "padding", "false"));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read tokenizer " + file + ": " + e.getMessage(), e);
            }
        }
        return tokenizer;
    }

    private void open() {
        if (closed) {
            throw new IllegalStateException("the model is closed");
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            dispatched.close();
        } finally {
            if (folder != null) {
                folder.close();
            }
            if (tokenizer != null) {
                tokenizer.close();
            }
            text.close();
        }
    }
}
