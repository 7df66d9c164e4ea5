package dev.ferry.cli;

import dev.ferry.core.placement.NoSplitModules;
import dev.ferry.core.module.Module;
import java.io.PrintWriter;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import picocli.CommandLine.Option;

/**
 * {@code --preload} (Accelerate's {@code preload_module_classes}, also accepted by that name), one default on every
 * command: the model's repeated block class, so a decoder layer is one unit with one hook (9 hooks on tiny-llama,
 * not 53); {@code none} turns preload off.
 */
public final class PreloadOption {

    static final String NONE = "none";

    @Option(names = {"--preload", "--preload-module-classes"}, split = ",", paramLabel = "CLASS|none",
            description = "Preload classes: each module of such a class is one unit, its weights loaded whole, "
                    + "with no hook below it. Default: the model's repeated block class (LlamaDecoderLayer, "
                    + "GPT2Block, ...); 'none' turns preload off.")
    List<String> preload;

    /** The preload classes for {@code root}; unknown classes warned about once. */
    public Set<String> classes(Module root, PrintWriter err) {
        if (preload == null) {
            return NoSplitModules.of(root);
        }
        if (preload.stream().anyMatch(c -> c.equalsIgnoreCase(NONE))) {
            if (preload.size() > 1) {
                throw new UsageException("--preload: 'none' turns preload off and cannot be combined with classes, "
                        + "got " + String.join(",", preload));
            }
            return Set.of();
        }
        Set<String> classes = new LinkedHashSet<>(preload);
        ModelTrees.warnUnknownClasses(root, classes, "--preload", err);
        return classes;
    }
}
