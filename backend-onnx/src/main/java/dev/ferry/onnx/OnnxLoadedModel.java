package dev.ferry.onnx;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.GenerationLoop;
import dev.ferry.core.generate.LanguageModel;
import dev.ferry.core.load.CallGate;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.text.ModelText;
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.tokenizers.DjlTextTokenizer;
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
    private final CallGate gate = new CallGate("the model");

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
        return gate.guard(lm);
    }

    @Override
    public ModelText text() {
        return gate.call(() -> text);
    }

    @Override
    public long[] generate(long[] prompt, GenerationConfig config) {
        return gate.call(() -> GenerationLoop.generate(lm, prompt, text.withEos(config)));
    }

    @Override
    public long[][] generate(long[][] prompts, GenerationConfig config) {
        return gate.call(() -> GenerationLoop.generate(lm, prompts, text.withEos(config)));
    }

    @Override
    public String generate(String prompt, GenerationConfig config) {
        java.util.Objects.requireNonNull(prompt, "prompt is null: pass the prompt text");
        return gate.call(() -> {
            HuggingFaceTokenizer t = tokenizer();
            return t.decode(GenerationLoop.generate(lm, t.encode(prompt).getIds(), config), true);
        });
    }

    @Override
    public float[][] logits(long[] ids) {
        return gate.call(() -> lm.logits(ids));
    }

    /**
     * For an encoder export (no {@code logits} output, e.g. all-MiniLM-L6-v2): the rows right-padded and masked into
     * one run, mean-pooled ({@link OnnxEncoder}). A causal-LM export gives logits only.
     *
     * @throws UnsupportedOperationException for a causal-LM export
     */
    @Override
    public float[][] embed(long[][] prompts) {
        java.util.Objects.requireNonNull(prompts, "prompts is null: pass one array of token ids per row");
        for (int r = 0; r < prompts.length; r++) {
            java.util.Objects.requireNonNull(prompts[r], "prompts[" + r + "] is null: pass the token ids of that row");
        }
        return gate.call(() -> {
            if (!OnnxEncoder.isEncoder(dispatched)) {
                throw new UnsupportedOperationException("embed: this ONNX export gives logits, not hidden states; load "
                        + "the model with backend(\"pytorch\") to pool a causal LM's hidden states, or use an encoder "
                        + "export");
            }
            return OnnxEncoder.meanPooled(dispatched, prompts);
        });
    }

    private synchronized HuggingFaceTokenizer tokenizer() {
        if (tokenizer == null) {
            Path file = dir.resolve("tokenizer.json");
            if (!Files.isRegularFile(file)) {
                throw new IllegalStateException("no tokenizer: " + dir + " has no tokenizer.json; pass token ids");
            }
            try {
                tokenizer = HuggingFaceTokenizer.newInstance(file, Map.of("truncation", "false", "padding", "false"));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read tokenizer " + file + ": " + e.getMessage(), e);
            } catch (RuntimeException e) {
                // the tokenizers library's own message is a bare serde error ("expected value at line 1 column 2")
                throw new IllegalArgumentException(file + " is not a valid tokenizer.json (Hugging Face tokenizers "
                        + "format): " + e.getMessage(), e);
            }
        }
        return tokenizer;
    }

    /** Refuses new calls ('the model is closed'), waits for the running ones to return, then frees. */
    @Override
    public void close() {
        if (!gate.closeAndDrain()) {
            return;
        }
        synchronized (this) {
            closeAll();
        }
    }

    private void closeAll() {
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
