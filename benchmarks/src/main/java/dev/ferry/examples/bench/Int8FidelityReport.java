package dev.ferry.examples.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.quant.Int8Fidelity;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Prints how far int8 weights move each fixture from itself ({@link Int8Fidelity}): the table of
 * {@code docs/quantization.md}.
 *
 * <pre>
 * Int8FidelityReport [FIXTURES_DIR=testdata] [NEW_TOKENS=64] [dtype=float16] [MODEL ...]
 * </pre>
 * The prompt of each model is its {@code golden.json}'s {@code input_ids}; both models compute in {@code dtype}
 * (default: as config.json declares; the fixtures are float32).
 */
public final class Int8FidelityReport {

    static final List<String> DEFAULT = List.of("tiny-llama", "tiny-mistral-sliding", "tiny-qwen2-sliding",
            "tiny-qwen3", "tiny-gemma2", "tiny-gemma3", "tiny-phi3", "tiny-mixtral", "tiny-qwen3-moe");

    private Int8FidelityReport() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args.length > 0 ? args[0] : "testdata");
        int newTokens = args.length > 1 ? Integer.parseInt(args[1]) : 64;
        DType dtype = null;
        List<String> rest = new java.util.ArrayList<>(args.length > 2 ? List.of(args).subList(2, args.length) : List.of());
        if (!rest.isEmpty() && rest.get(0).startsWith("dtype=")) {
            dtype = DType.fromTorch(rest.remove(0).substring("dtype=".length()));
        }
        List<String> models = rest.isEmpty() ? DEFAULT : rest;
        System.out.println("compute dtype: " + (dtype == null ? "as config.json declares" : dtype.torchName()));
        System.out.println("| model | max abs logit error / logit range | mean abs error / range | logit range "
                + "| top-1 agreement (teacher forced, " + newTokens + " tokens) | greedy tokens equal before the first "
                + "difference |");
        System.out.println("| --- | --- | --- | --- | --- | --- |");
        try (DjlBackend backend = new DjlBackend()) {
            for (String m : models) {
                Path model = dir.resolve(m);
                JsonNode golden = new ObjectMapper().readTree(Files.readString(model.resolve("golden.json")));
                long[] prompt = new long[golden.get("input_ids").size()];
                for (int i = 0; i < prompt.length; i++) {
                    prompt[i] = golden.get("input_ids").get(i).asLong();
                }
                Int8Fidelity f = Int8Fidelity.measure(model, prompt, newTokens, dtype, backend);
                System.out.printf(Locale.ROOT, "| %s | %.4f | %.5f | %.2f | %.3f | %d of %d |%n", m,
                        f.maxRelativeError(), f.meanRelativeError(), f.logitRange(), f.topOneAgreement(),
                        f.firstDivergence(), f.newTokens());
            }
        }
    }
}
