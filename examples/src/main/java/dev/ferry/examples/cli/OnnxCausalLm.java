package dev.ferry.examples.cli;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import dev.ferry.onnx.OnnxDispatchedModel;
import dev.ferry.onnx.OnnxRunResult;
import dev.ferry.pytorch.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Sampler;
import java.nio.LongBuffer;
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

    OnnxCausalLm(OnnxDispatchedModel model) {
        this.model = model;
    }

    long[] generate(long[] prompt, GenerationConfig config, LongConsumer onToken) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt");
        }
        Set<Long> eos = new HashSet<>(config.eosTokenIds() == null ? Set.of() : config.eosTokenIds());
        Sampler sampler = new Sampler(config);
        long[] sequence = Arrays.copyOf(prompt, prompt.length + config.maxNewTokens());
        int length = prompt.length;
        for (int produced = 0; produced < config.maxNewTokens(); produced++) {
            long token = sampler.next(lastLogits(Arrays.copyOf(sequence, length)));
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
