package dev.ferry.cli;

import com.google.inject.Injector;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.dispatch.QuantizedCheckpointWriter;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ferry quantize}: writes a quantized copy of a checkpoint that loads without quantizing again. */
@Command(name = "quantize", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Writes a quantized checkpoint: the Linear weights of the decoder layers as int8 with one float "
                + "scale per output channel (X.weight int8 [out, in], X.weight_scale float32 [out, 1]); embeddings, "
                + "norms and lm_head as they are; config.json with a quantization_config entry; tokenizer, chat "
                + "template and generation files copied. 'ferry generate' loads it as int8 with no option.",
                "--out must be a new or empty folder: Ferry never overwrites what it did not write."})
final class QuantizeCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", converter = ModelDirConverter.class,
            description = "Model folder: config.json and safetensors weights (single file or sharded).")
    Path model;

    @Option(names = "--out", required = true, paramLabel = "DIR",
            description = "Folder to write (created; if it exists it must be empty).")
    Path out;

    @Option(names = "--scheme", paramLabel = "SCHEME", defaultValue = "int8", converter = QuantizeSchemeConverter.class,
            description = "int8 (default): weight-only int8, symmetric, per output channel.")
    QuantizationScheme scheme;

    @Override
    public Integer call() {
        PrintWriter stdout = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        ModelDirConverter.requireWeights(model, Backends.Name.pytorch);
        Injector injector = Backends.injector(Backends.Name.pytorch);
        long start = System.nanoTime();
        try (DjlBackend djl = injector.getInstance(DjlBackend.class)) {
            ModelConfig config = ModelConfig.read(model);
            CausalLM lm;
            try {
                lm = ModelFamilies.build(config, djl, dev.ferry.pytorch.DjlDTypes.residentDType(config.dtype()),
                        scheme);
            } catch (IllegalArgumentException e) {
                throw new UsageException("--model " + model + ": " + e.getMessage(), e);
            }
            QuantizedCheckpointWriter.Summary s;
            try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(model)) {
                s = QuantizedCheckpointWriter.write(lm, ModelFamilies.checkpointView(lm, ckpt), model, out, scheme);
            } catch (IllegalArgumentException e) {
                throw new UsageException(e.getMessage().startsWith("output") ? "--out: " + e.getMessage()
                        : "--model " + model + ": " + e.getMessage(), e);
            }
            stdout.printf("wrote %s in %.1f s: %d weights quantized to %s; tensors %s (from %s); files %s%n", out,
                    (System.nanoTime() - start) / 1e9, s.quantizedWeights(), scheme,
                    SizeStrings.format(s.writtenBytes()), SizeStrings.format(s.sourceBytes()), s.files());
            return 0;
        }
    }
}
