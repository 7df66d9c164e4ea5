package dev.ferry.core.testing;

import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.LanguageModel;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.text.ModelText;
import dev.ferry.core.config.TokenLimits;
import java.util.List;

/**
 * A loaded model whose replies are scripted: every generation emits the tokens of {@code reply} (as the model's own
 * tokenizer encodes it), then an end-of-sequence id. Tokenizer, chat template and limits are the real model's, so the
 * server renders, counts and decodes as it would; only what the model "decides" is fixed, which random fixture
 * weights cannot be made to do (write a tool call). {@link #hermesToolsTemplate} is a chat template in the form of
 * Qwen's tool calling, for such tests.
 */
public final class ScriptedModel implements DispatchedModel {

    private final DispatchedModel real;
    private final long[] script;
    private final int vocab;

    public ScriptedModel(DispatchedModel real, String reply) {
        this.real = real;
        this.script = real.text().requireTokenizer().encode(reply, false);
        this.vocab = real.logits(new long[] {script[0]})[0].length;
    }

    private final class Scripted implements LanguageModel {
        private final LanguageModel inner = real.languageModel();

        /** How many tokens this generation has produced so far. */
        private final class Steps implements LanguageModel.Cache {
            int produced;

            @Override
            public void close() {
            }
        }

        @Override
        public TokenLimits tokenLimits() {
            return inner.tokenLimits();
        }

        @Override
        public List<Long> eosTokenIds() {
            return real.text().eosTokenIds();
        }

        @Override
        public Cache newCache() {
            return new Steps();
        }

        @Override
        public float[][] nextTokenLogits(long[] ids, int rows, long[] mask, Cache cache) {
            Steps steps = (Steps) cache;
            int step = steps.produced++;
            long next = step < script.length ? script[step] : eosTokenIds().get(0);
            float[][] out = new float[rows][vocab];
            for (float[] row : out) {
                row[(int) next] = 1000f; // sure under any sampling settings the request or generation_config.json bring
            }
            return out;
        }

        @Override
        public float[][] logits(long[] ids) {
            throw new UnsupportedOperationException("a scripted model has no logits");
        }
    }

    /**
     * A copy of the tiny-qwen3 fixture under {@code parent} whose chat template is {@link #hermesToolsTemplate} and
     * whose config allows 2048 positions (room for a tools section; a scripted reply computes nothing anyway).
     */
    public static java.nio.file.Path hermesToolsModel(java.nio.file.Path parent) {
        try {
            java.nio.file.Path dir = java.nio.file.Files.createDirectories(parent.resolve("tiny-qwen3-tools"));
            try (java.util.stream.Stream<java.nio.file.Path> files = java.nio.file.Files.list(
                    Fixtures.model("tiny-qwen3"))) {
                for (java.nio.file.Path f : files.toList()) {
                    if (!f.getFileName().toString().equals("chat_template.jinja")) {
                        java.nio.file.Files.copy(f, dir.resolve(f.getFileName()));
                    }
                }
            }
            java.nio.file.Files.writeString(dir.resolve("chat_template.jinja"), hermesToolsTemplate());
            com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
            com.fasterxml.jackson.databind.node.ObjectNode config =
                    (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(dir.resolve("config.json").toFile());
            config.put("max_position_embeddings", 2048);
            json.writeValue(dir.resolve("config.json").toFile(), config);
            return dir;
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** A chat template that shows tools and past calls as Qwen's does and asks for Hermes-form calls. */
    public static String hermesToolsTemplate() {
        try (java.io.InputStream in = ScriptedModel.class.getResourceAsStream("hermes_tools.jinja")) {
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Override
    public LanguageModel languageModel() {
        return new Scripted();
    }

    @Override
    public String backend() {
        return real.backend();
    }

    @Override
    public DeviceMap deviceMap() {
        return real.deviceMap();
    }

    @Override
    public DispatchReport report() {
        return real.report();
    }

    @Override
    public long[] generate(long[] prompt, GenerationConfig config) {
        throw new UnsupportedOperationException();
    }

    @Override
    public long[][] generate(long[][] prompts, GenerationConfig config) {
        throw new UnsupportedOperationException();
    }

    @Override
    public String generate(String prompt, GenerationConfig config) {
        throw new UnsupportedOperationException();
    }

    @Override
    public ModelText text() {
        return real.text();
    }

    @Override
    public float[][] logits(long[] ids) {
        throw new UnsupportedOperationException();
    }

    @Override
    public float[][] embed(long[][] prompts) {
        throw new UnsupportedOperationException();
    }

    @Override
    public void close() {
        real.close();
    }
}
