package dev.ferry.serve;

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
 * weights cannot be made to do (write a tool call).
 */
final class ScriptedModel implements DispatchedModel {

    private final DispatchedModel real;
    private final long[] script;
    private final int vocab;

    ScriptedModel(DispatchedModel real, String reply) {
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
