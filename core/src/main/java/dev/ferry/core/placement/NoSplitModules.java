package dev.ferry.core.placement;

import dev.ferry.core.module.Module;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model family's default no-split classes, as transformers declares them on each model class
 * ({@code _no_split_modules}): the blocks Accelerate never splits across devices. Looked up by the root module's
 * class, so both backends agree (the PyTorch families build the same class names; an ONNX export with scope
 * metadata records them). A root class not listed here falls back to the structure transformers' blocks share:
 * the class of the children of a {@code ModuleList}.
 */
public final class NoSplitModules {

    /** Model class → {@code _no_split_modules}, as transformers 5 declares them. */
    private static final Map<String, List<String>> BY_MODEL_CLASS = Map.ofEntries(
            Map.entry("LlamaForCausalLM", List.of("LlamaDecoderLayer")),
            Map.entry("LlamaModel", List.of("LlamaDecoderLayer")),
            Map.entry("MistralForCausalLM", List.of("MistralDecoderLayer")),
            Map.entry("MistralModel", List.of("MistralDecoderLayer")),
            Map.entry("Qwen2ForCausalLM", List.of("Qwen2DecoderLayer")),
            Map.entry("Qwen2Model", List.of("Qwen2DecoderLayer")),
            Map.entry("GPT2LMHeadModel", List.of("GPT2Block")),
            Map.entry("GPT2Model", List.of("GPT2Block")),
            Map.entry("BertModel", List.of("BertEmbeddings", "BertLayer")));

    private NoSplitModules() {
    }

    /** The default no-split classes of the model rooted at {@code root}; empty when nothing is known. */
    public static Set<String> of(Module root) {
        List<String> declared = BY_MODEL_CLASS.get(root.className());
        if (declared != null) {
            return Set.copyOf(new LinkedHashSet<>(declared));
        }
        Set<String> out = new LinkedHashSet<>();
        root.visit(m -> {
            if (m.className().equals("ModuleList")) {
                m.children().values().forEach(c -> out.add(c.className()));
            }
        });
        return out;
    }
}
