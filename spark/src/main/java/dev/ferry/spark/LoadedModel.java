package dev.ferry.spark;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;

/**
 * One dispatched model of an executor JVM, shared by all its tasks (a {@link Generator} is safe to call from many
 * threads; forwards are serialised per model). Closing it removes the hooks, then closes the offload folder, the
 * checkpoint and the backend.
 */
public final class LoadedModel implements AutoCloseable {

    private final DjlBackend backend;
    private final CausalLM model;
    private final DeviceMap deviceMap;
    private final SafetensorsCheckpoint checkpoint;
    private final CheckpointDispatcher.Result result;
    private final Generator generator;
    private final HuggingFaceTokenizer tokenizer;
    private final double loadSeconds;

    LoadedModel(DjlBackend backend, CausalLM model, DeviceMap deviceMap, SafetensorsCheckpoint checkpoint,
                CheckpointDispatcher.Result result, HuggingFaceTokenizer tokenizer, double loadSeconds) {
        this.backend = backend;
        this.model = model;
        this.deviceMap = deviceMap;
        this.checkpoint = checkpoint;
        this.result = result;
        this.tokenizer = tokenizer;
        this.loadSeconds = loadSeconds;
        this.generator = new Generator(model, backend, deviceMap.mainDevice(), tokenizer);
    }

    public Generator generator() {
        return generator;
    }

    public CausalLM model() {
        return model;
    }

    public DeviceMap deviceMap() {
        return deviceMap;
    }

    /** The folder's tokenizer, or {@code null} when it has no {@code tokenizer.json}. */
    public HuggingFaceTokenizer tokenizer() {
        return tokenizer;
    }

    public double loadSeconds() {
        return loadSeconds;
    }

    @Override
    public void close() {
        Dispatcher.remove(model);
        result.close();
        checkpoint.close();
        generator.close(); // closes the tokenizer
        backend.close();
    }
}
