package dev.ferry.pytorch.quant;

import dev.ferry.core.generate.Sampler;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Path;
import java.util.List;

/**
 * How far int8 weights move a model from itself: the model loaded as stored and loaded with int8 weights
 * ({@link ModelFamilies#quantize}), both on the CPU in the same compute dtype, compared on one sequence.
 *
 * <ul>
 *   <li>Greedy decoding of {@code newTokens} from the prompt by each: {@code firstDivergence} is the index of the
 *       first new token where they differ ({@code newTokens} when they never do).</li>
 *   <li>Teacher forced: the prompt plus the unquantized model's greedy tokens fed to both in one forward; over every
 *       position, the largest and mean absolute logit difference, reported relative to the range of the unquantized
 *       logits (max − min over the sequence), and {@code topOneAgreement}, the fraction of the {@code newTokens}
 *       predictions whose argmax is the same. Teacher forcing keeps both models on one sequence, so one early
 *       difference does not make every later comparison meaningless.</li>
 * </ul>
 */
public record Int8Fidelity(String model, int newTokens, int firstDivergence, double topOneAgreement,
                           double logitRange, double maxAbsError, double meanAbsError) {

    public double maxRelativeError() {
        return maxAbsError / logitRange;
    }

    public double meanRelativeError() {
        return meanAbsError / logitRange;
    }

    /**
     * Measures the model in {@code dir} on {@code prompt} with {@code newTokens} greedy tokens, in {@code dtype}
     * ({@code null}: as config.json declares).
     */
    public static Int8Fidelity measure(Path dir, long[] prompt, int newTokens, DType dtype, DjlBackend backend) {
        Device cpu = Device.cpu();
        ModelConfig config = ModelConfig.read(dir);
        DType compute = dtype != null ? dtype : dev.ferry.pytorch.DjlDTypes.residentDType(config.dtype());
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            CausalLM ref = ModelFamilies.build(config, backend, compute);
            CausalLM q = ModelFamilies.build(config, backend, compute, QuantizationScheme.INT8);
            try {
                ModelFamilies.load(ref, ModelFamilies.checkpointView(ref, ckpt), backend, cpu);
                ModelFamilies.load(q, ModelFamilies.checkpointView(q, ckpt), backend, cpu);
                Generator gr = new Generator(ref, backend, cpu);
                Generator gq = new Generator(q, backend, cpu);
                GenerationConfig greedy = GenerationConfig.greedy(newTokens).withEos(List.of());
                long[] tr = gr.generate(prompt, greedy);
                long[] tq = gq.generate(prompt, greedy);
                int first = 0;
                while (first < Math.min(tr.length, tq.length) && tr[first] == tq[first]) {
                    first++;
                }
                long[] seq = new long[prompt.length + tr.length];
                System.arraycopy(prompt, 0, seq, 0, prompt.length);
                System.arraycopy(tr, 0, seq, prompt.length, tr.length);
                float[][] lr = gr.logits(seq);
                float[][] lq = gq.logits(seq);
                double min = Double.POSITIVE_INFINITY;
                double max = Double.NEGATIVE_INFINITY;
                double maxErr = 0;
                double sumErr = 0;
                long n = 0;
                for (int p = 0; p < seq.length; p++) {
                    for (int v = 0; v < lr[p].length; v++) {
                        min = Math.min(min, lr[p][v]);
                        max = Math.max(max, lr[p][v]);
                        double e = Math.abs(lr[p][v] - lq[p][v]);
                        maxErr = Math.max(maxErr, e);
                        sumErr += e;
                        n++;
                    }
                }
                int agree = 0;
                for (int i = 0; i < tr.length; i++) {
                    int p = prompt.length - 1 + i; // the position that predicts new token i
                    if (Sampler.argmax(lr[p]) == Sampler.argmax(lq[p])) {
                        agree++;
                    }
                }
                return new Int8Fidelity(dir.getFileName().toString(), tr.length, first,
                        tr.length == 0 ? 1 : agree / (double) tr.length, max - min, maxErr, sumErr / n);
            } finally {
                ref.namedTensors().values().forEach(TensorSlot::release);
                q.namedTensors().values().forEach(TensorSlot::release);
            }
        }
    }
}
