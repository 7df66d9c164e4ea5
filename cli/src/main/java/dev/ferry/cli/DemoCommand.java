package dev.ferry.cli;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.inject.Injector;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.placement.NoSplitModules;
import dev.ferry.core.placement.DevicePlan;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.examples.demo.EmbeddedModel;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ferry demo} (the default): the main job on the model that ships in the jar. Plans under a budget too
 * small for the whole model, so some blocks stay resident and the rest is offloaded; prints the device map and
 * the dispatch report; generates; checks the tokens against an undispatched run of the same model.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Runs Ferry's main job on the small model shipped in the jar (tiny-llama, 4 decoder layers): "
                + "plans a device map under a memory budget that offloads blocks, prints the map and the dispatch "
                + "report, generates, and checks the tokens against an undispatched run (exit 1 if they differ).",
                "Needs no GPU."})
final class DemoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--max-memory", paramLabel = "DEV=SIZE,...", converter = MaxMemoryArg.Converter.class,
            description = "Budgets (default: about half the model resident on the main device, cpu the rest with "
                    + "an accelerator, disk for what is left).")
    MaxMemoryArg maxMemory;

    @Mixin
    PreloadOption preload;

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "8",
            description = "Tokens to generate (default ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--prompt", paramLabel = "TEXT",
            description = "Prompt text, encoded by the model's byte-level tokenizer (one token per UTF-8 byte). "
                    + "Default: the fixture's golden prompt, ids 1,17,42,99,3,250,7,128.")
    String prompt;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Path dir = EmbeddedModel.extract();
        Injector injector = Backends.injector(Backends.Name.pytorch);
        try (DjlBackend djl = injector.getInstance(DjlBackend.class)) {
            CausalLM lm = ModelTrees.causalLmOnMeta(dir, djl);
            long total = ModelTrees.bytes(lm);
            Set<String> classes = preload.classes(lm, err);
            out.printf("Ferry demo: %s (%s, %d decoder layers, %s of %s weights), extracted to %s%n",
                    EmbeddedModel.NAME, lm.className(), lm.numLayers(), SizeStrings.format(total),
                    lm.config().dtype().torchName(), dir);
            out.println("backend: " + djl);

            Map<Device, Long> budgets = maxMemory != null ? maxMemory.budgets() : defaultBudgets(djl.hasCuda(), total);
            DevicePlan plan;
            try {
                plan = Planning.plan(lm, budgets, null, classes, PlanRequest.Strategy.AUTO, null);
            } catch (IllegalArgumentException e) {
                throw new UsageException("--max-memory " + Planning.describeBudgets(budgets) + ": "
                        + e.getMessage(), e);
            }
            out.println();
            out.println("== plan: budgets " + Planning.describeBudgets(budgets) + ", no-split "
                    + NoSplitModules.of(lm) + ", preload " + classes);
            out.println(plan.deviceMap().toJson());
            out.print(PlanCommand.totals(plan));
            Planning.newWarnings(plan).forEach(w -> out.println("warning: " + w));
            explainTiers(out, lm, plan, djl, total, classes);

            try (DispatchedLoad.Loaded loaded = DispatchedLoad.load(injector.getInstance(CheckpointDispatcher.class),
                    lm, dir, plan.deviceMap(), classes, DispatchOptions.DEFAULT_PREFETCH_BLOCKS, null, false, "--max-memory",
                    err);
                 HuggingFaceTokenizer tokenizer = Generator.tokenizer(dir).orElseThrow();
                 Generator generator = new Generator(lm, djl, plan.deviceMap().mainDevice())) {
                long[] ids = prompt == null ? EmbeddedModel.PROMPT : tokenizer.encode(prompt).getIds();
                GenerationConfig greedy;
                try {
                    lm.tokenLimits().checkPrompt(ids);
                    greedy = GenerationConfig.greedy(lm.tokenLimits().cappedNewTokens(ids.length, maxNewTokens));
                } catch (IllegalArgumentException e) {
                    throw new UsageException("--prompt: " + e.getMessage(), e);
                }
                out.println();
                out.printf("== dispatch report (loaded in %.3f s: %s)%n", loaded.seconds(), loaded.placement());
                out.print(loaded.report().toTable());

                out.println();
                out.println("== generate: greedy, " + greedy.maxNewTokens() + " new tokens after prompt "
                        + Arrays.toString(ids) + " (text " + Texts.quoted(tokenizer.decode(ids, true)) + ")");
                TimedGeneration gen = TimedGeneration.run(generator, ids, greedy, err);
                out.printf("dispatched:   %s  (time to first token %.1f ms, %.1f tokens/s)%n",
                        Arrays.toString(gen.tokens()), gen.secondsToFirstToken() * 1e3, gen.tokensPerSecond());
                out.println("as text:      " + Texts.quoted(tokenizer.decode(gen.tokens(), true))
                        + "  (random weights: the bytes mean nothing)");
                long[] reference = undispatched(dir, djl, plan.deviceMap().mainDevice(), ids, greedy);
                out.printf("undispatched: %s  (the same model loaded whole on %s, no hooks)%n",
                        Arrays.toString(reference), plan.deviceMap().mainDevice());
                boolean match = Arrays.equals(gen.tokens(), reference);
                out.println(match ? "tokens match: yes" : "tokens match: NO");
                return match ? 0 : FerryCli.FAILURE;
            }
        }
    }

    /**
     * Budgets that leave only part of the model resident. A main device keeps room for the largest block that
     * may be offloaded after it (a decoder layer, ~20 % of this model), so: with an accelerator, 52 % on it
     * (embeddings and one layer resident) and 42 % in CPU memory (one layer CPU-offloaded), the rest on disk;
     * without one, 55 % on the CPU (embeddings and one layer resident) and the rest on disk.
     */
    static Map<Device, Long> defaultBudgets(boolean accelerator, long total) {
        Map<Device, Long> budgets = new LinkedHashMap<>();
        if (accelerator) {
            budgets.put(Device.accelerator(0), total * 52 / 100);
            budgets.put(Device.cpu(), total * 42 / 100);
        } else {
            budgets.put(Device.cpu(), total * 55 / 100);
        }
        return budgets;
    }

    /** Says what cpu and disk mean in this plan, and what the tiers would be with an accelerator. */
    private static void explainTiers(PrintWriter out, CausalLM lm, DevicePlan plan, DjlBackend djl, long total,
                                     Set<String> classes) {
        Device main = plan.deviceMap().mainDevice();
        out.println();
        if (main.isAccelerator()) {
            out.println("main device " + main + ": blocks mapped to " + main + " are resident; blocks mapped to cpu"
                    + " are CPU-offloaded (kept in host memory, copied to " + main + " for each forward); blocks "
                    + "mapped to disk are read from the memory-mapped checkpoint for each forward.");
            return;
        }
        out.println("No accelerator here, so the CPU is the main device and the plan has two tiers only:");
        out.println("  cpu  = resident: the block executes where its weights are stored;");
        out.println("  disk = offloaded: its weights are read from the memory-mapped checkpoint for each forward and "
                + "freed after.");
        out.println("CPU offload (weights kept in host memory, copied to an accelerator for each forward) needs an "
                + "accelerator.");
        Map<Device, Long> withGpu = defaultBudgets(true, total);
        DevicePlan gpuPlan = Planning.plan(lm, withGpu, null, classes, PlanRequest.Strategy.AUTO, null);
        out.println("With one accelerator and budgets " + Planning.describeBudgets(withGpu)
                + ", the same model would be planned as (cpu = CPU offload):");
        out.println("  " + Json.compact(gpuPlan.deviceMap().toJson()));
    }

    /** The reference: the same checkpoint loaded whole on {@code device}, no device map, no hooks. */
    private static long[] undispatched(Path dir, DjlBackend djl, Device device, long[] prompt,
                                       GenerationConfig config) {
        CausalLM ref = ModelFamilies.build(dir, djl);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir);
             Generator generator = new Generator(ref, djl, device)) {
            ModelFamilies.load(ref, ckpt, djl, device);
            return generator.generate(prompt, config);
        }
    }
}
