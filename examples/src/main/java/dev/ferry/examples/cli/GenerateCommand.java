package dev.ferry.examples.cli;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.inject.Injector;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.tensor.Device;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ferry generate}: loads a checkpoint dispatched over the devices and generates. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Loads a model dispatched by a device map (each tensor from its file straight to where its "
                + "block lives) and generates tokens, reporting load time, time to first token and tokens per second.",
                "Greedy unless --temperature, --top-k or --top-p is given."})
final class GenerateCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", converter = ModelDirConverter.class,
            description = "Model folder: config.json and safetensors weights (single file or sharded).")
    Path model;

    @Option(names = "--backend", paramLabel = "pytorch|onnx", defaultValue = "pytorch",
            description = "Backend to run on (default pytorch).")
    Backends.Name backend;

    @Option(names = "--device-map", paramLabel = "FILE.json|auto", defaultValue = "auto",
            converter = DeviceMapArg.Converter.class,
            description = "A device map in Accelerate's JSON form, or 'auto' (default) to plan one from --max-memory.")
    DeviceMapArg deviceMap;

    @Option(names = "--max-memory", paramLabel = "DEV=SIZE,...", converter = MaxMemoryArg.Converter.class,
            description = "Budgets for --device-map auto, e.g. 0=2GiB,cpu=8GiB (default: free memory of each device).")
    MaxMemoryArg maxMemory;

    @Option(names = "--offload-dir", paramLabel = "DIR",
            description = "Write disk-offloaded weights here (Accelerate's offload folder layout) and stream them "
                    + "from it; reused when up to date. Default: stream them from the checkpoint's files in place.")
    Path offloadDir;

    @Option(names = "--preload", split = ",", paramLabel = "CLASS",
            description = "Preload classes: each module of such a class is loaded whole, with no hook below it.")
    List<String> preload = new ArrayList<>();

    @ArgGroup(exclusive = true, multiplicity = "1")
    Prompt prompt;

    static final class Prompt {
        @Option(names = "--prompt", paramLabel = "TEXT", required = true,
                description = "Prompt text (needs tokenizer.json in the model folder).")
        String text;

        @Option(names = "--input-ids", split = ",", paramLabel = "ID", required = true,
                description = "Prompt as token ids, e.g. 1,17,42.")
        List<Long> ids;
    }

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "8",
            description = "Tokens to generate at most (default ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--temperature", paramLabel = "T", description = "Sampling temperature (> 0; 0 = greedy).")
    Double temperature;

    @Option(names = "--top-k", paramLabel = "K", description = "Sample among the K most likely tokens (0 = all).")
    Integer topK;

    @Option(names = "--top-p", paramLabel = "P", description = "Sample among the most likely tokens reaching P.")
    Double topP;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Sampling seed (default 0).")
    long seed;

    @Option(names = "--format", paramLabel = "text|json", defaultValue = "text",
            description = "text (default) or json (with \"new_tokens\": [ids...]).")
    ResultFormat format;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        GenerationConfig config = generationConfig();
        Injector injector = Backends.injector(backend);
        try (DjlBackend djl = injector.getInstance(DjlBackend.class)) {
            HuggingFaceTokenizer tokenizer = null;
            if (prompt.text != null) {
                tokenizer = Generator.tokenizer(model).orElseThrow(() -> new UsageException("--prompt: " + model
                        + " has no tokenizer.json; pass the prompt as token ids with --input-ids"));
            }
            CausalLM lm = ModelTrees.causalLmOnMeta(model, djl);
            Set<String> classes = new LinkedHashSet<>(preload);
            ModelTrees.warnUnknownClasses(lm, classes, "--preload", err);
            DeviceMap map = deviceMap(lm, djl, classes);
            long[] ids = tokenizer != null ? tokenizer.encode(prompt.text).getIds()
                    : prompt.ids.stream().mapToLong(Long::longValue).toArray();
            try (DispatchedLoad.Loaded loaded = DispatchedLoad.load(injector.getInstance(CheckpointDispatcher.class),
                    lm, model, map, classes, offloadDir, "--device-map " + deviceMap, err);
                 Generator generator = new Generator(lm, djl, map.mainDevice(), tokenizer)) {
                TimedGeneration gen = TimedGeneration.run(generator, ids, config, err);
                String text = tokenizer != null ? tokenizer.decode(gen.tokens(), true) : null;
                if (format == ResultFormat.json) {
                    out.println(json(lm, map, loaded, ids, gen, text));
                } else {
                    text(out, lm, map, loaded, ids, gen, text);
                }
            }
            return 0;
        }
    }

    private GenerationConfig generationConfig() {
        if (maxNewTokens < 0) {
            throw new UsageException("--max-new-tokens: must be >= 0, got " + maxNewTokens);
        }
        boolean sample = (temperature != null && temperature != 0) || topK != null || topP != null;
        if (!sample) {
            return GenerationConfig.greedy(maxNewTokens);
        }
        try {
            return GenerationConfig.sampled(maxNewTokens, temperature == null ? 1.0 : temperature,
                    topK == null ? 0 : topK, topP == null ? 1.0 : topP, seed);
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage().replace("temperature", "--temperature")
                    .replace("topK", "--top-k").replace("topP", "--top-p"), e);
        }
    }

    private DeviceMap deviceMap(CausalLM lm, DjlBackend djl, Set<String> preloadClasses) {
        if (!deviceMap.isAuto()) {
            if (maxMemory != null) {
                spec.commandLine().getErr().println("warning: --max-memory is ignored with --device-map "
                        + deviceMap);
            }
            return deviceMap.map();
        }
        Map<Device, Long> budgets = maxMemory != null ? maxMemory.budgets() : Planning.defaultBudgets(djl);
        try {
            return Planning.plan(lm, budgets, null, preloadClasses, PlanRequest.Strategy.AUTO, null).deviceMap();
        } catch (IllegalArgumentException e) {
            throw new UsageException("--max-memory " + Planning.describeBudgets(budgets) + ": " + e.getMessage(), e);
        }
    }

    private String json(CausalLM lm, DeviceMap map, DispatchedLoad.Loaded loaded, long[] ids, TimedGeneration gen,
                        String text) {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode o = mapper.createObjectNode();
        o.put("model", model.toString());
        o.put("class", lm.className());
        o.put("backend", backend.name());
        o.put("main_device", map.mainDevice().toString());
        try {
            o.set("device_map", mapper.readTree(map.toJson()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        o.put("hooked_modules", loaded.report().hookedCount());
        ArrayNode prompt = o.putArray("prompt_ids");
        Arrays.stream(ids).forEach(prompt::add);
        ArrayNode tokens = o.putArray("new_tokens");
        Arrays.stream(gen.tokens()).forEach(tokens::add);
        if (text != null) {
            o.put("text", text);
        }
        o.put("load_seconds", round(loaded.seconds()));
        o.put("time_to_first_token_seconds", round(gen.secondsToFirstToken()));
        o.put("generation_seconds", round(gen.seconds()));
        o.put("tokens_per_second", round(gen.tokensPerSecond()));
        try {
            return mapper.writerWithDefaultPrettyPrinter().writeValueAsString(o);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static double round(double v) {
        return Math.round(v * 1e6) / 1e6;
    }

    private void text(PrintWriter out, CausalLM lm, DeviceMap map, DispatchedLoad.Loaded loaded, long[] ids,
                      TimedGeneration gen, String text) {
        out.printf("model: %s (%s), backend %s, main device %s%n", model, lm.className(), backend,
                map.mainDevice());
        out.println("device map: " + Json.compact(map.toJson()));
        out.printf("loaded in %.3f s: %s; %d of %d modules hooked%n", loaded.seconds(), loaded.placement(),
                loaded.report().hookedCount(), loaded.report().modules().size());
        out.println("prompt ids: " + Arrays.toString(ids));
        out.println("new tokens: " + Arrays.toString(gen.tokens()));
        if (text != null) {
            out.println("text: " + text);
        }
        out.printf("time to first token: %.1f ms; %d tokens in %.1f ms: %.1f tokens/s%n",
                gen.secondsToFirstToken() * 1e3, gen.tokens().length, gen.seconds() * 1e3, gen.tokensPerSecond());
    }
}
