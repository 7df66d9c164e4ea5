package dev.ferry.pytorch.models;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.weights.WeightsStore;
import dev.ferry.pytorch.DjlBackend;

/**
 * A model family: the {@code model_type} it reads and how it builds its module tree from the config, on meta.
 * Most families are a {@link DecoderFamily}: class names plus the options read from the config, over the shared
 * blocks. See the package documentation for how to add one.
 */
public interface Family {

    /** The {@code model_type} of the configs this family reads ({@code qwen3}). */
    String modelType();

    /** The model of {@code config}, on meta, with parameters in {@code dtype}. */
    CausalLM build(ModelConfig config, DjlBackend backend, DType dtype);

    /**
     * The checkpoint as the module tree names its tensors: the identity when transformers saves them under the
     * module's own names, as for every dense family; a family whose checkpoints use other names or layouts (older
     * names, one tensor per expert where the tree fuses them) returns a view that renames or assembles them, so
     * loading, offloading and streaming all read tree names.
     */
    default WeightsStore checkpointView(WeightsStore checkpoint) {
        return checkpoint;
    }
}
