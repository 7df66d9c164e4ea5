package dev.ferry.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import java.nio.LongBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Sentence embeddings from a dispatched encoder export (BERT-like: {@code input_ids}, and {@code attention_mask} and
 * {@code token_type_ids} when the graph takes them): the rows right-padded and masked into one run, the first
 * output's hidden states mean-pooled over each row's tokens (sentence-transformers' mean pooling), or taken as they
 * are when the output is already {@code [batch, dim]}.
 */
public final class OnnxEncoder {

    private OnnxEncoder() {
    }

    /** Whether {@code model} looks like an encoder rather than a causal LM (it has no {@code logits} output). */
    public static boolean isEncoder(OnnxDispatchedModel model) {
        return isEncoder(model.tree().model());
    }

    /** Whether the graph looks like an encoder rather than a causal LM (it has no {@code logits} output). */
    public static boolean isEncoder(OnnxModel model) {
        return !model.outputNames().contains("logits");
    }

    /**
     * One mean-pooled embedding per row of {@code prompts}.
     *
     * @throws IllegalArgumentException when a row is empty or holds a negative id, or the graph takes an input
     *                                  other than the three above
     */
    public static float[][] meanPooled(OnnxDispatchedModel model, long[][] prompts) {
        int rows = prompts.length;
        if (rows == 0) {
            return new float[0][];
        }
        int width = 0;
        for (int r = 0; r < rows; r++) {
            if (prompts[r].length == 0) {
                throw new IllegalArgumentException("prompt " + r + " of the batch has no token");
            }
            for (long id : prompts[r]) {
                if (id < 0) {
                    throw new IllegalArgumentException("prompt " + r + " of the batch: token id " + id + " is negative");
                }
            }
            width = Math.max(width, prompts[r].length);
        }
        long[] ids = new long[rows * width];
        long[] mask = new long[rows * width];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(prompts[r], 0, ids, r * width, prompts[r].length);
            java.util.Arrays.fill(mask, r * width, r * width + prompts[r].length, 1L);
        }
        Map<String, long[]> available = Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids",
                new long[rows * width]);
        List<String> names = model.tree().model().inputNames();
        List<String> unknown = names.stream().filter(n -> !available.containsKey(n)).toList();
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("the model takes inputs " + unknown + " that embed cannot feed (it "
                    + "feeds input_ids, attention_mask and token_type_ids)");
        }
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        Map<String, OnnxTensor> feed = new LinkedHashMap<>();
        try {
            for (String n : names) {
                feed.put(n, OnnxTensor.createTensor(env, LongBuffer.wrap(available.get(n)), new long[] {rows, width}));
            }
            String output = model.tree().model().outputNames().get(0);
            try (OnnxRunResult result = model.run(feed)) {
                long[] shape = result.get(output).getInfo().getShape();
                return pool(result.floats(output), shape, prompts);
            }
        } catch (OrtException e) {
            throw new IllegalStateException("cannot make the input tensors: " + e.getMessage(), e);
        } finally {
            feed.values().forEach(OnnxTensor::close);
        }
    }

    private static float[][] pool(float[] out, long[] shape, long[][] prompts) {
        int rows = (int) shape[0];
        int dim = (int) shape[shape.length - 1];
        float[][] e = new float[rows][dim];
        if (shape.length == 2) {
            for (int r = 0; r < rows; r++) {
                System.arraycopy(out, r * dim, e[r], 0, dim);
            }
            return e;
        }
        int seq = (int) shape[1];
        for (int r = 0; r < rows; r++) {
            double[] sum = new double[dim];
            for (int t = 0; t < prompts[r].length; t++) {
                for (int k = 0; k < dim; k++) {
                    sum[k] += out[(r * seq + t) * dim + k];
                }
            }
            for (int k = 0; k < dim; k++) {
                e[r][k] = (float) (sum[k] / prompts[r].length);
            }
        }
        return e;
    }
}
