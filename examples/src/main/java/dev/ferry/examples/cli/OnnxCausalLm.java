package dev.ferry.examples.cli;

import ai.onnx.proto.OnnxMl.ValueInfoProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import dev.ferry.core.config.TokenLimits;
import dev.ferry.onnx.OnnxDispatchedModel;
import dev.ferry.onnx.OnnxModel;
import dev.ferry.onnx.OnnxRunResult;
import dev.ferry.pytorch.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Sampler;
import dev.ferry.pytorch.models.ModelConfig;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * Decoding with a dispatched ONNX causal LM exported without a KV cache ({@code input_ids [1, s]} →
 * {@code logits [1, s, vocab]}): each step runs the whole sequence and picks from the last position's logits,
 * with the same {@link Sampler} as the PyTorch backend, so greedy and seeded sampling agree across backends.
 */
final class OnnxCausalLm {

    private final OnnxDispatchedModel model;
    private final TokenLimits limits;

    /** @param limits the vocabulary and positions, as {@link #limits} reads them */
    OnnxCausalLm(OnnxDispatchedModel model, TokenLimits limits) {
        this.model = model;
        this.limits = limits;
    }

    /**
     * The ids and positions of the model in {@code dir}: from {@code config.json} when there is one, its sizes
     * checked by core's rule exactly as the PyTorch backend checks them (so a bad config is refused alike), else the vocabulary from the static last dimension of the graph's
     * {@code logits} output and no bound on positions. Without either, only negative ids are refused.
     *
     * @throws dev.ferry.core.config.ConfigException when a size of config.json is bad, naming the field
     */
    static TokenLimits limits(Path dir, OnnxModel onnx) {
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

    /**
     * The new tokens after {@code prompt}: at most as many as the positions leave ({@link
     * TokenLimits#cappedNewTokens}); the sequence grows as tokens come, so a large {@code maxNewTokens} allocates
     * nothing up front.
     *
     * @throws IllegalArgumentException when the prompt is empty, holds an id outside the vocabulary (a negative id
     *                                  would otherwise index from the end of the embedding), or is too long
     */
    long[] generate(long[] prompt, GenerationConfig config, LongConsumer onToken) {
        limits.checkPrompt(prompt);
        int limit = limits.cappedNewTokens(prompt.length, config.maxNewTokens());
        Set<Long> eos = new HashSet<>(config.eosTokenIds() == null ? Set.of() : config.eosTokenIds());
        Sampler sampler = new Sampler(config);
        long[] sequence = Arrays.copyOf(prompt, prompt.length + Math.min(limit, 64));
        int length = prompt.length;
        for (int produced = 0; produced < limit; produced++) {
            long token = sampler.next(lastLogits(Arrays.copyOf(sequence, length)));
            if (length == sequence.length) {
                sequence = Arrays.copyOf(sequence, length + Math.min(limit - produced, Math.max(64, length)));
            }
            sequence[length++] = token;
            if (onToken != null) {
                onToken.accept(token);
            }
            if (eos.contains(token)) {
                break;
            }
        }
        return Arrays.copyOfRange(sequence, prompt.length, length);
    }

    private float[] lastLogits(long[] ids) {
        try (OnnxTensor input = OnnxTensor.createTensor(OrtEnvironment.getEnvironment(), LongBuffer.wrap(ids),
                new long[] {1, ids.length});
             OnnxRunResult result = model.run(Map.of("input_ids", input))) {
            float[] logits = result.floats("logits");
            int vocab = logits.length / ids.length;
            return Arrays.copyOfRange(logits, (ids.length - 1) * vocab, ids.length * vocab);
        } catch (OrtException e) {
            throw new IllegalStateException("cannot make the input_ids tensor: " + e.getMessage(), e);
        }
    }
}
