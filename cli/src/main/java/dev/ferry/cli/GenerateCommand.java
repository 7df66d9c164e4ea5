package dev.ferry.cli;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.inject.Injector;
import dev.ferry.core.config.TokenLimits;
import dev.ferry.core.weights.FileAccess;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.onnx.OnnxOptions;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.AvailableMemory;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.onnx.OnnxDispatchReport;
import dev.ferry.onnx.OnnxDispatchedModel;
import dev.ferry.onnx.OnnxDispatcher;
import dev.ferry.onnx.OnnxModelException;
import dev.ferry.onnx.OnnxModuleTree;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.onnx.OnnxCausalLm;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
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

    @Option(names = "--device-map", paramLabel = "FILE.json|JSON|auto", defaultValue = "auto",
            converter = DeviceMapArg.Converter.class,
            description = "A device map in Accelerate's JSON form, or 'auto' (default) to plan one with the planning "
                    + "options below (as 'ferry plan' does).")
    DeviceMapArg deviceMap;

    @Mixin
    PlanningOptions planning;

    @Mixin
    PreloadOption preload;

    @Option(names = {"--offload-dir", "--offload-folder"}, paramLabel = "DIR",
            description = "Write disk-offloaded weights here (Accelerate's offload folder layout) and stream them "
                    + "from it; reused when up to date. Default: stream them from the checkpoint's files in place.")
    Path offloadDir;

    @Option(names = "--overwrite-offload-dir",
            description = "Let Ferry rewrite an --offload-dir it did not make (an Accelerate offload folder): its "
                    + "index.json and the .dat files of the same names are replaced, nothing else is removed. Without "
                    + "it such a folder is refused, untouched. A folder Ferry made is rewritten when stale either way.")
    boolean overwriteOffloadDir;

    @Option(names = "--prefetch", paramLabel = "N", defaultValue = "1",
            description = "Offloaded blocks read and moved ahead of the forward on a background thread, as many as "
                    + "N of the largest streamed block take (default: ${DEFAULT-VALUE}; 0 turns prefetch off).")
    int prefetch;

    @Option(names = "--unsafe-map-weights-in-place",
            description = "Zero copy: use the weight files' memory mappings in place instead of reading them into "
                    + "Ferry's buffers (saves a copy per streamed block on the CPU). RISK: if another process "
                    + "truncates a weight file while the model runs, the JVM dies (SIGBUS). Only for files nobody "
                    + "else writes. Same as -D" + FileAccess.PROPERTY + "=true.")
    boolean unsafeMapInPlace;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Prompt prompt;

    static final class Prompt {
        @Option(names = "--prompt", paramLabel = "TEXT", required = true,
                description = "Prompt text (needs tokenizer.json in the model folder).")
        String text;

        @Option(names = "--input-ids", split = ",", paramLabel = "ID", required = true,
                description = "Prompt as token ids, e.g. 1,17,42.")
        List<Long> ids;

        @Option(names = "--prompt-file", paramLabel = "FILE|-", required = true,
                description = "Prompt text read from FILE, or from standard input with '-', as UTF-8 whatever the "
                        + "locale (one final line break dropped; needs tokenizer.json).")
        String file;

        @Option(names = "--messages", paramLabel = "FILE.json", required = true,
                description = "A conversation, a JSON list of {\"role\", \"content\"} objects, turned into the "
                        + "prompt by the model's chat template (chat_template.jinja or tokenizer_config.json) as "
                        + "transformers' apply_chat_template(..., add_generation_prompt=True, tokenize=True) does.")
        Path messages;
    }

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "8",
            description = "Tokens to generate at most (default ${DEFAULT-VALUE}); capped, with a warning, to what "
                    + "the model's positions leave after the prompt.")
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
        String access = System.getProperty(FileAccess.PROPERTY);
        if (unsafeMapInPlace) {
            System.setProperty(FileAccess.PROPERTY, "true"); // read when the weight files are opened
        }
        try {
            return generate();
        } finally {
            if (access == null) {
                System.clearProperty(FileAccess.PROPERTY);
            } else {
                System.setProperty(FileAccess.PROPERTY, access);
            }
        }
    }

    private int generate() {
        PrintWriter out = spec.commandLine().getOut();
        onePrompt();
        ModelDirConverter.requireWeights(model, backend);
        if (prompt.file != null) {
            prompt.text = PromptText.read(prompt.file, System.in);
        }
        GenerationConfig config = generationConfig();
        Injector injector = Backends.injector(backend);
        Generation g = switch (backend) {
            case pytorch -> runPyTorch(injector, config);
            case onnx -> runOnnx(injector, config);
        };
        if (format == ResultFormat.json) {
            out.println(json(g));
        } else {
            text(out, g);
        }
        return 0;
    }

    private HuggingFaceTokenizer tokenizer() {
        if (prompt.text == null && prompt.messages == null) {
            return null;
        }
        return Generator.tokenizer(model).orElseThrow(() -> new UsageException(promptOption() + ": " + model
                + " has no tokenizer.json; pass the prompt as token ids with --input-ids"));
    }

    private String promptOption() {
        return prompt.file != null ? "--prompt-file" : prompt.text != null ? "--prompt"
                : prompt.messages != null ? "--messages" : "--input-ids";
    }

    private long[] promptIds(HuggingFaceTokenizer tokenizer) {
        if (prompt.messages != null) {
            return ChatPrompt.ids(model, prompt.messages, tokenizer);
        }
        return tokenizer != null ? tokenizer.encode(prompt.text).getIds()
                : prompt.ids.stream().mapToLong(Long::longValue).toArray();
    }

    /** config.json's end-of-sequence ids and every one of generation_config.json's, where the options name none. */
    private GenerationConfig withModelEos(GenerationConfig config, List<Long> configEos) {
        return config.eosTokenIds() != null ? config
                : config.withEos(dev.ferry.core.text.ModelText.eosTokenIds(model, configEos));
    }

    /**
     * {@code --input-ids} given more than once: picocli would join the lists into one prompt. Several prompts would be
     * a batch, which {@code generate} does not run yet, so they are refused rather than silently concatenated.
     */
    private void onePrompt() {
        var option = spec.commandLine().getParseResult().matchedOption("--input-ids");
        if (option != null && option.originalStringValues().size() > 1) {
            throw new UsageException("--input-ids: given " + option.originalStringValues().size() + " times ("
                    + String.join(" and ", option.originalStringValues()) + "); generate runs one prompt at a time "
                    + "(no batches yet): pass one comma-separated list");
        }
    }

    private Generation runPyTorch(Injector injector, GenerationConfig config) {
        PrintWriter err = spec.commandLine().getErr();
        try (DjlBackend djl = injector.getInstance(DjlBackend.class)) {
            HuggingFaceTokenizer tokenizer = tokenizer();
            CausalLM lm = (CausalLM) planning.quantized(inDType(ModelTrees.causalLmOnMeta(model, djl), djl, err));
            long[] ids = promptIds(tokenizer);
            GenerationConfig checked = withModelEos(atTheDoor(lm.tokenLimits(), ids, config), lm.eosTokenIds());
            Set<String> classes = preload.classes(lm, err);
            DeviceMap map = planning.deviceMap(deviceMap, lm, djl, classes, true, err);
            try (DispatchedLoad.Loaded loaded = DispatchedLoad.load(injector.getInstance(CheckpointDispatcher.class),
                    lm, model, map, classes, prefetchBlocks(), offloadDir, overwriteOffloadDir, "--device-map " + deviceMap,
                    err);
                 Generator generator = new Generator(lm, djl, map.mainDevice(), tokenizer)) {
                TimedGeneration gen = TimedGeneration.run(generator, ids, checked, err);
                String text = tokenizer != null ? tokenizer.decode(gen.tokens(), true) : null;
                return new Generation(lm.className(), map, loaded.seconds(), loaded.placement(), loaded.report(),
                        ids, gen, text, StopReason.of(gen.tokens(), checked.eosTokenIds(), maxNewTokens,
                        checked.maxNewTokens()), lm.tokenLimits().maxPositions());
            }
        }
    }

    private Generation runOnnx(Injector injector, GenerationConfig config) {
        PrintWriter err = spec.commandLine().getErr();
        if (planning.dtype != null) {
            throw new UsageException("--dtype: not supported with --backend onnx (the exported graph fixes its types)");
        }
        if (planning.quantize != null) {
            throw new UsageException("--quantize: not supported with --backend onnx (quantize the export with "
                    + "onnxruntime's quantize_dynamic; Ferry runs such exports)");
        }
        Path file = model.resolve("model.onnx");
        if (!java.nio.file.Files.isRegularFile(file)) {
            throw new UsageException("--backend onnx: " + model + " has no model.onnx");
        }
        HuggingFaceTokenizer tokenizer = tokenizer();
        long[] ids = promptIds(tokenizer);
        OnnxDispatcher dispatcher = injector.getInstance(OnnxDispatcher.class);
        long start = System.nanoTime();
        OnnxModuleTree tree = dispatcher.tree(file);
        TokenLimits limits;
        List<Long> eos;
        try {
            limits = OnnxCausalLm.limits(model, tree.model());
            eos = OnnxCausalLm.eosTokenIds(model);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--model " + model + ": " + e.getMessage(), e);
        }
        GenerationConfig checked = atTheDoor(limits, ids, config);
        Set<String> classes = preload.classes(tree.root(), err);
        DeviceMap map = planning.deviceMap(deviceMap, tree.root(), injector.getInstance(TensorBackend.class), classes,
                true, err);
        DispatchPlan plan;
        try {
            // the map checked against the graph before anything is loaded, as on PyTorch: a bad map is usage
            plan = OnnxDispatchedModel.plan(tree, map, new PreloadRule(classes));
        } catch (OnnxModelException.InvalidPlan | OnnxModelException.UnknownScope e) {
            throw new UsageException("--device-map " + deviceMap + ": " + e.getMessage(), e);
        }
        OnnxOptions onnxOptions = dispatcher.options().withPrefetchPartitions(prefetchBlocks());
        OffloadFolder folder = null;
        if (offloadDir != null) {
            folder = OnnxOffload.folder(tree, plan, offloadDir, overwriteOffloadDir, err);
            onnxOptions = onnxOptions.withDiskStore(folder);
        }
        OnnxDispatchedModel dispatched;
        try (Progress progress = Progress.start(err, "loading", 1, " model", 1,
                "partitioning " + file.getFileName() + " by the device map")) {
            try {
                dispatched = OnnxDispatchedModel.dispatch(tree, plan, onnxOptions);
            } catch (IllegalArgumentException | OnnxModelException.InvalidPlan | OnnxModelException.UnknownScope e) {
                throw new UsageException("--device-map " + deviceMap + ": " + e.getMessage(), e);
            }
            progress.step(1);
            progress.finish(String.format("done in %.3f s", (System.nanoTime() - start) / 1e9));
        }
        double loadSeconds = (System.nanoTime() - start) / 1e9;
        try (OnnxDispatchedModel d = dispatched; OffloadFolder closeFolder = folder) {
            GenerationConfig withEos = withModelEos(checked, eos);
            TimedGeneration gen = TimedGeneration.run(new OnnxCausalLm(d, limits, eos), ids, withEos, err);
            OnnxDispatchReport report = d.report();
            String placement = String.format("%d partitions, %d of them resident sessions, %s of initializers",
                    report.sessionCount(), report.residentSessions(),
                    dev.ferry.core.placement.SizeStrings.format(report.initializerBytes()));
            String text = tokenizer != null ? tokenizer.decode(gen.tokens(), true) : null;
            return new Generation(tree.root().className(), map, loadSeconds, placement, report.core(), ids, gen,
                    text, StopReason.of(gen.tokens(), withEos.eosTokenIds(), maxNewTokens, checked.maxNewTokens()),
                    limits.maxPositions());
        }
    }

    /**
     * The prompt checked against the model before anything is loaded, the same on both backends: an id outside
     * the vocabulary or a prompt longer than the positions is bad usage (exit 2, naming the id and the vocabulary
     * size); {@code --max-new-tokens} beyond what the positions leave is capped, with a warning.
     */
    private GenerationConfig atTheDoor(TokenLimits limits, long[] ids, GenerationConfig config) {
        try {
            limits.checkPrompt(ids);
        } catch (IllegalArgumentException e) {
            throw new UsageException(promptOption() + ": " + e.getMessage(), e);
        }
        int n = limits.cappedNewTokens(ids.length, config.maxNewTokens());
        if (n == config.maxNewTokens()) {
            return config;
        }
        spec.commandLine().getErr().println("warning: --max-new-tokens " + config.maxNewTokens() + " capped to " + n
                + ": the model has " + limits.maxPositions() + " positions and the prompt " + ids.length + " tokens");
        return config.withMaxNewTokens(n);
    }

    private int prefetchBlocks() {
        if (prefetch < 0) {
            throw new UsageException("--prefetch: must be 0 (off) or more, got " + prefetch);
        }
        return prefetch;
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

    /**
     * The model rebuilt with its weights in {@code --dtype} (the loader converts each tensor as it reads it); the
     * model as declared without it. DJL holds no bfloat16 arrays, so bfloat16 weights run as float32, with a warning.
     */
    private CausalLM inDType(CausalLM declared, DjlBackend djl, PrintWriter err) {
        if (planning.dtype == null) {
            return declared;
        }
        dev.ferry.core.tensor.DType resident = dev.ferry.pytorch.DjlDTypes.residentDType(planning.dtype);
        if (resident != planning.dtype) {
            err.println("warning: --dtype " + planning.dtype.torchName() + ": the PyTorch backend cannot hold it, "
                    + "weights run as " + resident.torchName());
        }
        return dev.ferry.pytorch.models.ModelFamilies.build(declared.config(), djl, resident);
    }

    private String json(Generation g) {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode o = mapper.createObjectNode();
        o.put("model", model.toString());
        o.put("class", g.className());
        o.put("backend", backend.name());
        o.put("main_device", g.map().mainDevice().toString());
        try {
            o.set("device_map", mapper.readTree(g.map().toJson()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (g.report() != null) {
            o.put("hooked_modules", g.report().hookedCount());
        }
        ArrayNode promptIds = o.putArray("prompt_ids");
        Arrays.stream(g.promptIds()).forEach(promptIds::add);
        ArrayNode tokens = o.putArray("new_tokens");
        Arrays.stream(g.timed().tokens()).forEach(tokens::add);
        if (g.text() != null) {
            o.put("text", g.text());
        }
        o.put("stopped", g.stopped().json());
        o.put("load_seconds", round(g.loadSeconds()));
        o.put("time_to_first_token_seconds", round(g.timed().secondsToFirstToken()));
        o.put("generation_seconds", round(g.timed().seconds()));
        o.put("tokens_per_second", round(g.timed().tokensPerSecond()));
        try {
            return mapper.writerWithDefaultPrettyPrinter().writeValueAsString(o);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static double round(double v) {
        return Math.round(v * 1e6) / 1e6;
    }

    private void text(PrintWriter out, Generation g) {
        out.printf("model: %s (%s), backend %s, main device %s%n", model, g.className(), backend,
                g.map().mainDevice());
        out.println("device map: " + Json.compact(g.map().toJson()));
        out.printf("loaded in %.3f s: %s%s%n", g.loadSeconds(), g.placement(), g.report() == null ? ""
                : String.format("; %d of %d modules hooked", g.report().hookedCount(), g.report().modules().size()));
        out.println("prompt ids: " + Arrays.toString(g.promptIds()));
        out.println("new tokens: " + Arrays.toString(g.timed().tokens()));
        if (g.text() != null) {
            out.println("text: " + Texts.quoted(g.text()));
        }
        out.println("stopped: " + g.stopped().json() + switch (g.stopped()) {
            case EOS -> " (end-of-sequence token " + g.timed().tokens()[g.timed().tokens().length - 1] + ")";
            case MAX_NEW_TOKENS -> " (" + maxNewTokens + " new tokens)";
            case MAX_POSITIONS -> " (the model has " + g.maxPositions() + " positions: " + g.promptIds().length
                    + " prompt + " + g.timed().tokens().length + " new tokens; --max-new-tokens " + maxNewTokens
                    + " not reached)";
        });
        TimedGeneration t = g.timed();
        out.printf("time to first token: %.1f ms; %d tokens in %.1f ms: %.1f tokens/s%n",
                t.secondsToFirstToken() * 1e3, t.tokens().length, t.seconds() * 1e3, t.tokensPerSecond());
    }
}
