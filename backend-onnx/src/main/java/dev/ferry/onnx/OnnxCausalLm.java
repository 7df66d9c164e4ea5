package dev.ferry.onnx;

import ai.onnx.proto.OnnxMl.ValueInfoProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import dev.ferry.core.config.ModelConfig;
import dev.ferry.core.config.TokenLimits;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.GenerationLoop;
import dev.ferry.core.generate.LanguageModel;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;

/**
 * The ONNX backend's {@link LanguageModel}: a dispatched causal LM exported without a KV cache
 * ({@code input_ids [1, s]} → {@code logits [1, s, vocab]}). Each step runs the whole sequence and takes the last
 * position's logits; core's {@link GenerationLoop} and {@link dev.ferry.core.generate.Sampler} decode, the same as
 * on the PyTorch backend, so greedy and seeded sampling agree across backends. Batches run row by row (such an
 * export takes no {@code attention_mask}).
 *
 * <p>Safe to call from several threads: {@link OnnxDispatchedModel#run} is serialised and each call's tensors are
 * its own.
 */
public final class OnnxCausalLm implements LanguageModel {

    private final OnnxDispatchedModel model;
    private final TokenLimits limits;
    private final List<Long> eos;

    /**
     * @param limits the vocabulary and positions, as {@link #limits} reads them
     * @param eos    the end-of-sequence ids (config.json's, {@link #eosTokenIds(Path)})
     */
    public OnnxCausalLm(OnnxDispatchedModel model, TokenLimits limits, List<Long> eos) {
        this.model = model;
        this.limits = limits;
        this.eos = List.copyOf(eos);
    }

    /** Over the model of folder {@code dir}: limits and end-of-sequence ids read from it. */
    public static OnnxCausalLm of(OnnxDispatchedModel model, Path dir) {
        return new OnnxCausalLm(model, limits(dir, model.tree().model()), eosTokenIds(dir));
    }

    /**
     * The ids and positions of the model in {@code dir}: from {@code config.json} when there is one, its sizes
     * checked by core's rule exactly as the PyTorch backend checks them (so a bad config is refused alike), else the
     * vocabulary from the static last dimension of the graph's {@code logits} output and no bound on positions.
     * Without either, only negative ids are refused.
     *
     * @throws dev.ferry.core.config.ConfigException when a size of config.json is bad, naming the field
     */
    public static TokenLimits limits(Path dir, OnnxModel onnx) {
        Path config = dir.resolve("config.json");
        if (Files.isRegularFile(config)) {
            return ModelConfig.read(config).shape().tokenLimits();
        }
        ValueInfoProto logits = onnx.valueInfo("logits");
        if (logits != null && logits.getType().hasTensorType()) {
            var dims = logits.getType().getTensorType().getShape().getDimList();
            if (!dims.isEmpty() && dims.get(dims.size() - 1).hasDimValue()) {
                long vocab = dims.get(dims.size() - 1).getDimValue();
                if (vocab > 0 && vocab <= Integer.MAX_VALUE) {
                    return new TokenLimits((int) vocab, Integer.MAX_VALUE);
                }
            }
        }
        return new TokenLimits(Integer.MAX_VALUE, Integer.MAX_VALUE);
    }

    /** config.json's {@code eos_token_id} in {@code dir}; none without a config.json. */
    public static List<Long> eosTokenIds(Path dir) {
        return Files.isRegularFile(dir.resolve("config.json")) ? ModelConfig.read(dir).eosTokenIds() : List.of();
    }

    @Override
    public TokenLimits tokenLimits() {
        return limits;
    }

    @Override
    public List<Long> eosTokenIds() {
        return eos;
    }

    /**
     * The new tokens after {@code prompt} ({@link GenerationLoop#generate(LanguageModel, long[], GenerationConfig,
     * LongConsumer)}).
     *
     * @throws IllegalArgumentException when the prompt is empty, holds an id outside the vocabulary (a negative id
     *                                  would otherwise index from the end of the embedding), or is too long
     */
    public long[] generate(long[] prompt, GenerationConfig config, LongConsumer onToken) {
        return GenerationLoop.generate(this, prompt, config, onToken);
    }

    @Override
    public float[][] nextTokenLogits(long[] ids, int rows, long[] mask, Cache cache) {
        if (rows != 1 || cache != null) {
            throw new IllegalArgumentException("an ONNX causal LM runs one row without cache, got " + rows
                    + " rows" + (cache != null ? " and a cache" : ""));
        }
        return forward(ids, ids.length - 1);
    }

    @Override
    public float[][] logits(long[] ids) {
        limits.checkPrompt(ids);
        return forward(ids, 0);
    }

    /** Logits of positions {@code from..ids.length-1}. */
    private float[][] forward(long[] ids, int from) {
        try (OnnxTensor input = OnnxTensor.createTensor(OrtEnvironment.getEnvironment(), LongBuffer.wrap(ids),
                new long[] {1, ids.length});
             OnnxRunResult result = model.run(Map.of("input_ids", input))) {
            float[] logits = result.floats("logits");
            int vocab = logits.length / ids.length;
            float[][] out = new float[ids.length - from][];
            for (int i = from; i < ids.length; i++) {
                out[i - from] = Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab);
            }
            return out;
        } catch (OrtException e) {
            throw new IllegalStateException("cannot make the input_ids tensor: " + e.getMessage(), e);
        }
    }
}
