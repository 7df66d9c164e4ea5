package dev.ferry.pytorch;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.LanguageModel;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.text.ModelText;
import dev.ferry.core.weights.WeightsStore;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;

/**
 * A causal LM loaded and dispatched on the PyTorch backend by {@link dev.ferry.core.load.Ferry}. It owns its
 * {@link DjlBackend} (one per model), so {@link #close()} frees every native array the model made. Thread-safe as
 * {@link DispatchedModel} says: one forward lock per dispatch.
 */
public final class PyTorchDispatchedModel implements DispatchedModel {

    private final DjlBackend backend;
    private final CausalLM model;
    private final DeviceMap map;
    private final Generator generator;
    private final CheckpointDispatcher.Result result;
    private final WeightsStore checkpoint;
    private final ModelText text;
    private volatile boolean closed;

    PyTorchDispatchedModel(DjlBackend backend, CausalLM model, DeviceMap map, Generator generator,
                           CheckpointDispatcher.Result result, WeightsStore checkpoint, ModelText text) {
        this.text = text;
        this.backend = backend;
        this.model = model;
        this.map = map;
        this.generator = generator;
        this.result = result;
        this.checkpoint = checkpoint;
    }

    @Override
    public String backend() {
        return "pytorch";
    }

    @Override
    public DeviceMap deviceMap() {
        return map;
    }

    @Override
    public DispatchReport report() {
        return result.report();
    }

    @Override
    public LanguageModel languageModel() {
        return generator;
    }

    /** The PyTorch model itself (for what the common interface does not offer). */
    public CausalLM causalLm() {
        return model;
    }

    /** The backend this model's arrays live in; closed with the model. */
    public DjlBackend djlBackend() {
        return backend;
    }

    @Override
    public ModelText text() {
        open();
        return text;
    }

    @Override
    public long[] generate(long[] prompt, GenerationConfig config) {
        open();
        return generator.generate(prompt, text.withEos(config));
    }

    @Override
    public long[][] generate(long[][] prompts, GenerationConfig config) {
        open();
        return generator.generate(prompts, text.withEos(config));
    }

    @Override
    public String generate(String prompt, GenerationConfig config) {
        open();
        return generator.generate(prompt, config);
    }

    @Override
    public float[][] logits(long[] ids) {
        open();
        return generator.logits(ids);
    }

    @Override
    public float[][] embed(long[][] prompts) {
        open();
        return generator.embed(prompts);
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
            Dispatcher.remove(model);
            result.close();
            checkpoint.close();
            generator.close();
            text.close();
        } finally {
            backend.close();
        }
    }
}
