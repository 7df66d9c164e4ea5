package dev.ferry.cli;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.inject.Injector;
import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.placement.AvailableMemory;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.onnx.OnnxDispatchedModel;
import dev.ferry.onnx.OnnxDispatcher;
import dev.ferry.onnx.OnnxEncoder;
import dev.ferry.onnx.OnnxModelException;
import dev.ferry.onnx.OnnxModuleTree;
import dev.ferry.onnx.OnnxOptions;
import dev.ferry.onnx.OnnxRunResult;
import dev.ferry.pytorch.generate.Generator;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
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

/**
 * {@code ferry embed}: sentence embeddings from a model dispatched by a device map: an ONNX encoder export (pooled
 * over the attention mask), or on the PyTorch backend the mean of a causal LM's final hidden states, exactly what
 * {@code DispatchedModel.embed} gives through the builder. A causal-LM ONNX export is refused, as the builder
 * refuses it: its output is logits, and averaging logits is no embedding.
 */
@Command(name = "embed", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Prints one pooled embedding per input: {\"embeddings\": [[...], ...]}. An ONNX encoder export "
                + "(model.onnx without a logits output) runs on ONNX Runtime, pooled over the attention mask; a "
                + "Hugging Face checkpoint (config.json, safetensors) runs on PyTorch, the mean of its final hidden "
                + "states (as DispatchedModel.embed). Both dispatched by a device map.",
                "attention_mask and token_type_ids are fed when the ONNX model takes them."})
final class EmbedCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", converter = ModelDirConverter.class,
            description = "Model folder: model.onnx, and tokenizer.json for --text.")
    Path model;

    @Option(names = "--backend", paramLabel = "pytorch|onnx",
            description = "Backend to run on. Default: onnx for an encoder export (model.onnx without logits), else "
                    + "pytorch (config.json and safetensors). A causal-LM ONNX export is refused on onnx.")
    Backends.Name backend;

    @Option(names = "--device-map", paramLabel = "FILE.json|JSON|auto", defaultValue = "auto",
            converter = DeviceMapArg.Converter.class,
            description = "A device map in Accelerate's JSON form, or 'auto' (default): planned from --max-memory, "
                    + "or the whole model on the CPU without it.")
    DeviceMapArg deviceMap;

    @Option(names = "--max-memory", paramLabel = "DEV=SIZE,...", converter = MaxMemoryArg.Converter.class,
            description = "Budgets for --device-map auto, e.g. cpu=8MiB.")
    MaxMemoryArg maxMemory;

    @Option(names = "--offload-dir", paramLabel = "DIR",
            description = "Write disk-offloaded initializers here (an offload folder) and stream them from it.")
    Path offloadDir;

    @Option(names = "--overwrite-offload-dir", description = "Let Ferry rewrite an --offload-dir it did not make.")
    boolean overwriteOffloadDir;

    @Option(names = "--preload", split = ",", paramLabel = "CLASS",
            description = "Preload classes: each module of such a class is loaded whole.")
    List<String> preload = new ArrayList<>();

    @ArgGroup(exclusive = true, multiplicity = "1")
    Inputs inputs;

    static final class Inputs {
        @Option(names = "--text", paramLabel = "TEXT", required = true,
                description = "A text to embed (repeat for several; needs tokenizer.json).")
        List<String> texts;

        @Option(names = "--input-ids", paramLabel = "ID,...", required = true,
                description = "Token ids of one input, e.g. 101,7592,102 (repeat the option for several).")
        List<String> ids;
    }

    @Option(names = "--pooling", paramLabel = "mean|cls", defaultValue = "mean",
            description = "mean (default: over the attention mask, as sentence-transformers) or cls (first token).")
    Pooling pooling;

    @Option(names = "--normalize", description = "Scale each embedding to unit length.")
    boolean normalize;

    @Option(names = "--optimization", paramLabel = "LEVEL", defaultValue = "EXTENDED_OPT",
            description = "ONNX Runtime graph optimisation of every partition: NO_OPT, BASIC_OPT, EXTENDED_OPT "
                    + "(default) or ALL_OPT.")
    OptLevel optimization;

    @Option(names = "--format", paramLabel = "json", defaultValue = "json", description = "json (the only format).")
    String format;

    enum Pooling { mean, cls }

    /** Token ids, attention mask and token type ids of a batch, padded to its longest input. */
    record Batch(long[][] ids, long[][] mask, long[][] types) {
    }

    @Override
    public Integer call() {
        if (!format.equals("json")) {
            throw new UsageException("--format: only json is supported, got " + format);
        }
        Path file = model.resolve("model.onnx");
        boolean hasOnnx = Files.isRegularFile(file);
        if (backend == Backends.Name.pytorch || (backend == null && !hasOnnx)) {
            return onPyTorch();
        }
        if (!hasOnnx) {
            throw new UsageException("--model " + model + ": no model.onnx for --backend onnx");
        }
        PrintWriter err = spec.commandLine().getErr();
        Batch batch = batch();
        Injector injector = Backends.injector(Backends.Name.onnx);
        OnnxDispatcher dispatcher = injector.getInstance(OnnxDispatcher.class);
        OnnxModuleTree tree = dispatcher.tree(file);
        if (!OnnxEncoder.isEncoder(tree.model())) {
            if (backend == null && Files.isRegularFile(model.resolve("config.json"))) {
                return onPyTorch();
            }
            throw new UsageException("--model " + model + ": model.onnx is a causal-LM export (its output is logits, "
                    + "not hidden states), and an average of logits is no embedding; embed the checkpoint on the "
                    + "PyTorch backend (--backend pytorch: the mean of the final hidden states), or use an encoder "
                    + "export");
        }
        Set<String> classes = new LinkedHashSet<>(preload);
        DeviceMap map = deviceMap(tree, injector.getInstance(TensorBackend.class), classes);
        DispatchPlan plan;
        try {
            plan = OnnxDispatchedModel.plan(tree, map, new PreloadRule(classes));
        } catch (OnnxModelException.InvalidPlan | OnnxModelException.UnknownScope e) {
            throw new UsageException("--device-map " + deviceMap + ": " + e.getMessage(), e);
        }
        if (!plan.keysWithoutModules().isEmpty()) {
            err.println("note: device map keys without ops in the model: " + plan.keysWithoutModules());
        }
        OnnxOptions options = dispatcher.options().withOptimizationLevel(optimization);
        OffloadFolder folder = offloadDir == null ? null
                : OnnxOffload.folder(tree, plan, offloadDir, overwriteOffloadDir, err);
        if (folder != null) {
            options = options.withDiskStore(folder);
        }
        float[][] embeddings;
        try (OffloadFolder closeFolder = folder;
             OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(tree, plan, options)) {
            embeddings = run(d, batch);
        }
        spec.commandLine().getOut().println(json(embeddings));
        return 0;
    }

    /**
     * The PyTorch backend through the builder, as a library user would call it: {@code DispatchedModel.embed}, the
     * mean of the final hidden states over each row's tokens.
     */
    private Integer onPyTorch() {
        ModelDirConverter.requireWeights(model, Backends.Name.pytorch);
        if (pooling != Pooling.mean) {
            throw new UsageException("--pooling " + pooling + ": on the PyTorch backend embed is the mean of the final "
                    + "hidden states; cls pooling is for encoder exports on onnx");
        }
        Batch batch = batch();
        long[][] rows = new long[batch.ids().length][];
        for (int b = 0; b < rows.length; b++) {
            int len = (int) java.util.Arrays.stream(batch.mask()[b]).sum();
            rows[b] = java.util.Arrays.copyOf(batch.ids()[b], len);
        }
        Ferry.Builder builder = Ferry.model(model).backend("pytorch");
        try {
            if (!deviceMap.isAuto()) {
                builder.deviceMap(deviceMap.map());
            } else if (maxMemory != null) {
                Map<Object, Long> budgets = new LinkedHashMap<>();
                maxMemory.budgets().forEach((d, bytes) -> budgets.put(d.accelerateValue(), bytes));
                builder.maxMemory(budgets);
            }
            if (!preload.isEmpty()) {
                builder.preload(preload.toArray(String[]::new));
            }
            if (offloadDir != null) {
                builder.offloadFolder(offloadDir);
            }
            if (overwriteOffloadDir) {
                builder.overwriteOffloadFolder();
            }
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage(), e);
        }
        float[][] embeddings;
        try (DispatchedModel m = builder.load()) {
            embeddings = m.embed(rows);
        } catch (IllegalArgumentException e) {
            // options the model cannot take (a device-map key naming no module, budgets, token ids): usage
            throw new UsageException(e.getMessage(), e);
        }
        if (normalize) {
            normalize(embeddings);
        }
        spec.commandLine().getOut().println(json(embeddings));
        return 0;
    }

    private DeviceMap deviceMap(OnnxModuleTree tree, TensorBackend tensors, Set<String> classes) {
        if (!deviceMap.isAuto()) {
            return deviceMap.map();
        }
        if (maxMemory == null) {
            return DeviceMap.single(Device.cpu());
        }
        Map<Device, Long> budgets = maxMemory.budgets();
        try {
            return Planning.plan(tree.root(), budgets, null, classes, PlanRequest.Strategy.AUTO, null).deviceMap();
        } catch (IllegalArgumentException e) {
            throw new UsageException("--max-memory " + Planning.describeBudgets(budgets) + ": " + e.getMessage(), e);
        }
    }

    private Batch batch() {
        List<long[]> ids = new ArrayList<>();
        List<long[]> types = new ArrayList<>();
        if (inputs.texts != null) {
            HuggingFaceTokenizer tokenizer = Generator.tokenizer(model).orElseThrow(() -> new UsageException(
                    "--text: " + model + " has no tokenizer.json; pass token ids with --input-ids"));
            for (String t : inputs.texts) {
                Encoding e = tokenizer.encode(t);
                ids.add(e.getIds());
                types.add(e.getTypeIds());
            }
        } else {
            for (String seq : inputs.ids) {
                long[] parsed;
                try {
                    parsed = java.util.Arrays.stream(seq.split(",")).map(String::trim).filter(x -> !x.isEmpty())
                            .mapToLong(Long::parseLong).toArray();
                } catch (NumberFormatException e) {
                    throw new UsageException("--input-ids " + seq + ": not a comma-separated list of token ids", e);
                }
                if (java.util.Arrays.stream(parsed).anyMatch(x -> x < 0)) {
                    throw new UsageException("--input-ids " + seq + ": a token id is negative");
                }
                ids.add(parsed);
                types.add(new long[parsed.length]);
            }
        }
        int len = ids.stream().mapToInt(a -> a.length).max().orElse(0);
        if (len == 0) {
            throw new UsageException("--input-ids: an input has no token");
        }
        int n = ids.size();
        long[][] id = new long[n][len];
        long[][] mask = new long[n][len];
        long[][] type = new long[n][len];
        for (int b = 0; b < n; b++) {
            for (int t = 0; t < ids.get(b).length; t++) {
                id[b][t] = ids.get(b)[t];
                mask[b][t] = 1;
                type[b][t] = types.get(b)[t];
            }
        }
        return new Batch(id, mask, type);
    }

    private float[][] run(OnnxDispatchedModel d, Batch batch) {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        List<String> names = d.tree().model().inputNames();
        Map<String, long[][]> available = Map.of("input_ids", batch.ids(), "attention_mask", batch.mask(),
                "token_type_ids", batch.types());
        List<String> unknown = names.stream().filter(n -> !available.containsKey(n)).toList();
        if (!unknown.isEmpty()) {
            throw new UsageException("--model " + model + ": the model takes inputs " + unknown
                    + " that embed cannot feed (it feeds input_ids, attention_mask and token_type_ids)");
        }
        Map<String, OnnxTensor> feed = new LinkedHashMap<>();
        try {
            for (String n : names) {
                feed.put(n, tensor(env, available.get(n)));
            }
            String output = d.tree().model().outputNames().get(0);
            try (OnnxRunResult r = d.run(feed)) {
                long[] shape = r.get(output).getInfo().getShape();
                return pool(r.floats(output), shape, batch.mask());
            }
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        } finally {
            feed.values().forEach(OnnxTensor::close);
        }
    }

    private static OnnxTensor tensor(OrtEnvironment env, long[][] v) throws OrtException {
        long[] flat = new long[v.length * v[0].length];
        for (int i = 0; i < v.length; i++) {
            System.arraycopy(v[i], 0, flat, i * v[0].length, v[0].length);
        }
        return OnnxTensor.createTensor(env, LongBuffer.wrap(flat), new long[] {v.length, v[0].length});
    }

    /** Pools {@code [batch, seq, dim]} hidden states (mean under the mask, or the first token); a 2-D output as is. */
    float[][] pool(float[] out, long[] shape, long[][] mask) {
        int batch = (int) shape[0];
        int dim = (int) shape[shape.length - 1];
        float[][] e = new float[batch][dim];
        if (shape.length == 2) {
            for (int b = 0; b < batch; b++) {
                System.arraycopy(out, b * dim, e[b], 0, dim);
            }
        } else {
            int seq = (int) shape[1];
            for (int b = 0; b < batch; b++) {
                double[] sum = new double[dim];
                double count = 0;
                for (int t = 0; t < (pooling == Pooling.cls ? 1 : seq); t++) {
                    if (pooling == Pooling.mean && mask[b][t] == 0) {
                        continue;
                    }
                    count++;
                    for (int k = 0; k < dim; k++) {
                        sum[k] += out[(b * seq + t) * dim + k];
                    }
                }
                for (int k = 0; k < dim; k++) {
                    e[b][k] = (float) (sum[k] / Math.max(count, 1e-9));
                }
            }
        }
        if (normalize) {
            normalize(e);
        }
        return e;
    }

    /** Scales each row to unit length. */
    private static void normalize(float[][] e) {
        for (float[] v : e) {
            double n = 0;
            for (float x : v) {
                n += (double) x * x;
            }
            double norm = Math.max(Math.sqrt(n), 1e-12);
            for (int k = 0; k < v.length; k++) {
                v[k] = (float) (v[k] / norm);
            }
        }
    }

    private static String json(float[][] embeddings) {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode o = mapper.createObjectNode();
        ArrayNode all = o.putArray("embeddings");
        for (float[] v : embeddings) {
            ArrayNode a = all.addArray();
            for (float x : v) {
                a.add(x);
            }
        }
        try {
            return mapper.writeValueAsString(o);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
