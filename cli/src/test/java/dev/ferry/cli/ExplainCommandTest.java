package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry explain}: the dispatch report, without devices or weights. */
class ExplainCommandTest {

    /** design.md's example: layers 0-2 on accelerator 0, layer 3 offloaded to CPU. */
    private static final String DESIGN_MAP = """
            {"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": 0, "model.layers.2": 0,
             "model.layers.3": "cpu", "model.norm": 0, "model.rotary_emb": 0, "lm_head": 0}""";

    @TempDir
    Path tmp;

    private Path designMap() throws IOException {
        return Files.writeString(tmp.resolve("map.json"), DESIGN_MAP);
    }

    private static List<String> hooked(JsonNode report) {
        List<String> out = new ArrayList<>();
        report.get("modules").forEach(m -> {
            if (m.get("hooked").asBoolean()) {
                out.add(m.get("name").asText());
            }
        });
        return out;
    }

    @Test
    void preloadClassHooksNineModulesAsDesignSays() throws IOException {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", designMap().toString(),
                "--preload", "LlamaDecoderLayer", "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(hooked(r.json())).containsExactly("", "model.embed_tokens", "model.layers.0", "model.layers.1",
                "model.layers.2", "model.layers.3", "model.norm", "model.rotary_emb", "lm_head");
    }

    @Test
    void preloadNoneHooksFiftyThreeModules() throws IOException {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", designMap().toString(),
                "--preload", "none", "--format", "json");
        assertThat(hooked(r.json())).hasSize(53);
    }

    @Test
    void jsonHasExactlyTheReportFieldsInTreeOrderRootFirst() throws IOException {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", designMap().toString(),
                "--preload", "LlamaDecoderLayer", "--format", "json");
        JsonNode report = r.json();
        assertThat(report.properties()).extracting(e -> e.getKey()).containsExactly("modules");
        JsonNode modules = report.get("modules");
        assertThat(modules).hasSize(59);
        modules.forEach(m -> assertThat(m.properties()).extracting(e -> e.getKey())
                .containsExactly("name", "class", "device", "storage", "hooked", "reason"));
        ObjectMapper json = new ObjectMapper();
        assertThat(modules.get(0)).isEqualTo(json.readTree("""
                {"name": "", "class": "LlamaForCausalLM", "device": 0, "storage": null, "hooked": true,
                 "reason": "root: moves inputs and outputs"}"""));
        assertThat(modules.get(1)).isEqualTo(json.readTree("""
                {"name": "model", "class": "LlamaModel", "device": null, "storage": null, "hooked": false,
                 "reason": "above the mapped blocks"}"""));
    }

    @Test
    void offloadedPreloadUnitIsHookedAndItsInsideIsNot() throws IOException {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", designMap().toString(),
                "--preload", "LlamaDecoderLayer", "--format", "json");
        ObjectMapper json = new ObjectMapper();
        JsonNode modules = r.json().get("modules");
        JsonNode layer3 = null;
        JsonNode q3 = null;
        for (JsonNode m : modules) {
            if (m.get("name").asText().equals("model.layers.3")) {
                layer3 = m;
            }
            if (m.get("name").asText().equals("model.layers.3.self_attn.q_proj")) {
                q3 = m;
            }
        }
        assertThat(layer3).isEqualTo(json.readTree("""
                {"name": "model.layers.3", "class": "LlamaDecoderLayer", "device": 0, "storage": "cpu",
                 "hooked": true, "reason": "in device map"}"""));
        assertThat(q3).isEqualTo(json.readTree("""
                {"name": "model.layers.3.self_attn.q_proj", "class": "Linear", "device": 0, "storage": "cpu",
                 "hooked": false, "reason": "below preload class LlamaDecoderLayer"}"""));
    }

    @Test
    void tableShowsEachModuleIndentedWithItsReason() throws IOException {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", designMap().toString(),
                "--preload", "LlamaDecoderLayer");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).startsWith("module                            class                 device  storage  "
                + "hooked  reason\n(root)                            LlamaForCausalLM      gpu0    -        yes     "
                + "root: moves inputs and outputs\n");
        assertThat(r.out()).contains(
                "      3                           LlamaDecoderLayer     gpu0    cpu      yes     in device map\n",
                "9 of 59 modules hooked; main device gpu0\n");
    }

    @Test
    void autoPlansFromTheBudgets() {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", "auto",
                "--max-memory", "cpu=400KiB", "--preload", "LlamaDecoderLayer");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).contains(
                "      0                           LlamaDecoderLayer     cpu     cpu      yes     in device map\n",
                "      1                           LlamaDecoderLayer     cpu     disk     yes     in device map\n");
    }

    @Test
    void needsNoWeights() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("config-only"));
        Files.copy(Path.of(Cli.model("tiny-llama"), "config.json"), dir.resolve("config.json"));
        Cli r = Cli.run("explain", "--model", dir.toString(), "--device-map", designMap().toString(),
                "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
    }

    @Test
    void unknownPreloadClassIsWarnedAbout() throws IOException {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", designMap().toString(),
                "--preload", "LlamaDecoderLayr");
        assertThat(r.exitCode()).isZero();
        assertThat(r.err()).contains("warning: --preload LlamaDecoderLayr: no module of the model has this class");
    }

    @Test
    void mapSplittingAPreloadUnitIsUsage() throws IOException {
        Path map = Files.writeString(tmp.resolve("split.json"), """
                {"model.embed_tokens": 0, "model.layers.0.self_attn": 0, "model.layers.0.mlp": "cpu",
                 "model.layers.0.input_layernorm": 0, "model.layers.0.post_attention_layernorm": 0,
                 "model.layers.1": 0, "model.layers.2": 0, "model.layers.3": 0, "model.norm": 0,
                 "model.rotary_emb": 0, "lm_head": 0}""");
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", map.toString(),
                "--preload", "LlamaDecoderLayer");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(2);
        assertThat(r.err()).contains("--device-map", "split.json", "preload unit 'model.layers.0'");
    }

    @Test
    void theDefaultPreloadIsTheFamilysBlockClassSoNineModulesAreHooked() throws IOException {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", designMap().toString(),
                "--format", "json");
        assertThat(hooked(r.json())).hasSize(9);
    }

    @Test
    void acceleratesPreloadModuleClassesNameIsAnAlias() throws IOException {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", designMap().toString(),
                "--preload-module-classes", "none", "--format", "json");
        assertThat(hooked(r.json())).hasSize(53);
    }

    @Test
    void preloadNoneWithAClassIsUsage() throws IOException {
        Cli r = Cli.run("explain", "--model", Cli.model("tiny-llama"), "--device-map", designMap().toString(),
                "--preload", "none,LlamaMLP");
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("--preload: 'none' turns preload off and cannot be combined with classes");
    }

    @Test
    void autoMapUnderTheSamePlanningOptionsIsTheMapPlanPrints() throws IOException {
        String[] planning = {"--max-memory", "0=367KiB,cpu=297KiB", "--strategy", "sequential", "--dtype", "float16",
                "--no-split-module-classes", "LlamaDecoderLayer"};
        Cli plan = Cli.run(concat(new String[] {"plan", "--model", Cli.model("tiny-llama"), "--format", "json"},
                planning));
        Cli explain = Cli.run(concat(new String[] {"explain", "--model", Cli.model("tiny-llama"), "--device-map",
                "auto", "--format", "json"}, planning));
        assertThat(explain.exitCode()).as(explain.toString()).isZero();
        java.util.Map<String, String> explained = new java.util.LinkedHashMap<>();
        for (JsonNode m : explain.json().get("modules")) {
            if (plan.json().has(m.get("name").asText())) {
                explained.put(m.get("name").asText(), (m.get("storage").isNull() ? m.get("device")
                        : m.get("storage")).asText());
            }
        }
        java.util.Map<String, String> planned = new java.util.LinkedHashMap<>();
        plan.json().fields().forEachRemaining(e -> planned.put(e.getKey(), e.getValue().asText()));
        assertThat(explained).isEqualTo(planned);
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
