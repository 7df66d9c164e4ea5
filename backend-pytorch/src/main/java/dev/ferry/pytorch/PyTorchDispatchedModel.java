package dev.ferry.pytorch;

import dev.ferry.core.hook.StreamCounter;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.LanguageModel;
import dev.ferry.core.load.CallGate;
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
    private final CallGate gate = new CallGate("the model");
    private final StreamCounter counter;

    PyTorchDispatchedModel(DjlBackend backend, CausalLM model, DeviceMap map, Generator generator,
                           CheckpointDispatcher.Result result, WeightsStore checkpoint, StreamCounter counter,
                           ModelText text) {
        this.counter = counter;
        this.text = text;
        this.backend = backend;
        this.model = model;
        this.map = map;
        this.generator = generator;
        this.result = result;
        this.checkpoint = checkpoint;
    }

    @Override
    public java.util.Optional<StreamCounter> streamCounter() {
        return java.util.Optional.of(counter);
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
        return gate.guard(generator);
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
        return gate.call(() -> text);
    }

    @Override
    public long[] generate(long[] prompt, GenerationConfig config) {
        return gate.call(() -> generator.generate(prompt, text.withEos(config)));
    }

    @Override
    public long[][] generate(long[][] prompts, GenerationConfig config) {
        return gate.call(() -> generator.generate(prompts, text.withEos(config)));
    }

    @Override
    public String generate(String prompt, GenerationConfig config) {
        return gate.call(() -> generator.generate(prompt, config));
    }

    @Override
    public float[][] logits(long[] ids) {
        return gate.call(() -> generator.logits(ids));
    }

    @Override
    public float[][] embed(long[][] prompts) {
        return gate.call(() -> generator.embed(prompts));
    }

    /**
     * Refuses new calls ('the model is closed'), waits for the calls already running on other threads to return, then
     * frees: a running forward never loses its weights, KV cache or hooks underneath it.
     */
    @Override
    public void close() {
        if (!gate.closeAndDrain()) {
            return;
        }
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
