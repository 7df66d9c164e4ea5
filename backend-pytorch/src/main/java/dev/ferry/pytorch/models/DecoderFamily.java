package dev.ferry.pytorch.models;

import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import java.util.function.BiFunction;

/**
 * A family built from the shared decoder blocks ({@link DecoderModel}, {@link DecoderLayer},
 * {@link DecoderAttention}, an {@link MlpFactory}): its {@code model_type}, its class names, and how its config reads
 * into a {@link DecoderSpec}. {@code model.*} and {@code lm_head} are named as transformers names them, so a
 * checkpoint saved by transformers loads name for name.
 *
 * @param deltas what the family changes from Llama's reading of its config ({@link DecoderSpec#llama}, given
 *               with the family's class names)
 */
public record DecoderFamily(String modelType, ClassNames names,
                            BiFunction<FamilyConfig, DecoderSpec.Builder, DecoderSpec.Builder> deltas)
        implements Family {

    /** The spec {@code config} gives this family (checked: a missing or unsupported field is a named error). */
    public DecoderSpec spec(ModelConfig config) {
        FamilyConfig c = new FamilyConfig(config);
        if (!c.modelType().equals(modelType)) {
            throw new IllegalArgumentException("model_type '" + c.modelType() + "' is not " + modelType);
        }
        return deltas.apply(c, DecoderSpec.llama(c, names)).build();
    }

    @Override
    public CausalLM build(ModelConfig config, DjlBackend backend, DType dtype) {
        DecoderSpec spec = spec(config);
        var shape = spec.shape();
        return new CausalLM(names.causalLm(), backend, config, "model", new DecoderModel(spec, backend, dtype),
                spec.hidden(), shape.vocabSize(), shape.maxPositions(), spec.tiedEmbeddings(), spec.finalSoftcap(),
                spec.longRopeSwitch(), dtype);
    }
}
