package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import org.junit.jupiter.api.Test;

/** A float16 model's {@code Generator.logits} (float16 arrays underneath) reads as float32 values. */
class Float16LogitsTest {

    @Test
    void aFloat16ModelsLogitsReadAsFloatsCloseToTheFloat32Golden() {
        Golden golden = Golden.of("tiny-llama");
        try (DjlBackend backend = new DjlBackend();
             SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model("tiny-llama"))) {
            CausalLM lm = ModelFamilies.build(ModelConfig.read(Fixtures.model("tiny-llama")), backend, DType.FLOAT16);
            ModelFamilies.load(lm, ckpt, backend, Device.cpu());
            float[][] logits = new Generator(lm, backend, Device.cpu()).logits(golden.inputIds());
            double diff = golden.maxAbsDiff(logits);
            System.out.printf("tiny-llama float16 on the CPU: max |logit - float32 golden| = %.4f%n", diff);
            assertThat(logits).hasNumberOfRows(golden.logits().length);
            // float16 keeps 11 significant bits (relative 4.9e-4 per rounding): over 4 layers, logits of magnitude
            // up to ~7 stay within a few hundredths; 0.1 is far from a misread array (values off by orders)
            assertThat(diff).isLessThan(0.1);
        }
    }
}
