package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.core.generate.Sampler;
import dev.ferry.pytorch.models.CausalLM;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class GenerationTest {

    static DjlBackend backend;
    static CausalLM model;
    static Generator gen;
    static Golden golden;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
        FidelityTest.backend = backend;
        model = FidelityTest.load("tiny-llama");
        gen = new Generator(model, backend, Device.cpu());
        golden = Golden.of("tiny-llama");
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    @Test
    void samplingIsReproducibleBySeedAndCacheDoesNotChangeIt() {
        GenerationConfig c = GenerationConfig.sampled(12, 0.8, 50, 0.9, 1234);
        long[] a = gen.generate(golden.inputIds(), c);
        assertThat(a).hasSize(12);
        assertThat(java.util.Arrays.stream(a).allMatch(t -> t >= 0 && t < 256)).isTrue();
        assertThat(gen.generate(golden.inputIds(), c)).containsExactly(a);
        assertThat(gen.generate(golden.inputIds(), c.withCache(false))).containsExactly(a);
        boolean anyDiffers = false;
        for (long seed = 1; seed < 6 && !anyDiffers; seed++) {
            anyDiffers = !java.util.Arrays.equals(a,
                    gen.generate(golden.inputIds(), GenerationConfig.sampled(12, 0.8, 50, 0.9, seed)));
        }
        assertThat(anyDiffers).isTrue();
    }

    @Test
    void topKOfOneIsGreedy() {
        assertThat(gen.generate(golden.inputIds(), GenerationConfig.sampled(8, 1.0, 1, 1.0, 7)))
                .containsExactly(golden.greedy());
        assertThat(gen.generate(golden.inputIds(), GenerationConfig.sampled(8, 1.0, 0, 1e-6, 7)))
                .containsExactly(golden.greedy());
    }

    @Test
    void stopsAtEndOfSequenceIncludingIt() {
        long[] g = golden.greedy(); // 4, 4, 4, 6, ...
        long[] out = gen.generate(golden.inputIds(), GenerationConfig.greedy(8).withEos(List.of(g[3])));
        assertThat(out).containsExactly(g[0], g[1], g[2], g[3]);
    }

    @Test
    void samplerFiltersTopKAndTopP() {
        float[] logits = {0f, 10f, 9.9f, -5f};
        for (int seed = 0; seed < 20; seed++) {
            int t = new Sampler(GenerationConfig.sampled(1, 1.0, 2, 1.0, seed)).next(logits);
            assertThat(t).isIn(1, 2);
            assertThat(new Sampler(GenerationConfig.sampled(1, 1.0, 0, 0.3, seed)).next(logits)).isEqualTo(1);
        }
        assertThat(Sampler.argmax(logits)).isEqualTo(1);
    }

    @Test
    void textNeedsATokenizer(@org.junit.jupiter.api.io.TempDir java.nio.file.Path empty) {
        assertThat(Generator.tokenizer(empty)).isEmpty();
        assertThatThrownBy(() -> gen.generate("hello", GenerationConfig.greedy(2)))
                .hasMessageContaining("tokenizer.json");
    }

    /** testdata/tiny-llama/tokenizer.json: byte-level BPE, token id = byte value, no merges, no special tokens. */
    @Test
    void theTinyLlamaTokenizerEncodesEachUtf8ByteAsItsValueAndDecodesBackUnchanged() {
        try (var tokenizer = Generator.tokenizer(Fixtures.model("tiny-llama")).orElseThrow()) {
            String text = "Ferry carries große models ⛴";
            long[] ids = tokenizer.encode(text).getIds();
            byte[] utf8 = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            assertThat(ids).hasSize(utf8.length);
            for (int i = 0; i < utf8.length; i++) {
                assertThat(ids[i]).as("id of byte %d", i).isEqualTo(utf8[i] & 0xff);
            }
            assertThat(tokenizer.decode(ids, true)).isEqualTo(text);
        }
    }

    @Test
    void aFoldersTokenizerNeverTruncatesALongPrompt() {
        try (var tokenizer = Generator.tokenizer(Fixtures.model("tiny-llama")).orElseThrow()) {
            assertThat(tokenizer.encode("x".repeat(600)).getIds()).hasSize(600);
        }
    }

    @Test
    void theTinyLlamaTokenizerDecodesEveryAsciiIdToItsCharacter() {
        try (var tokenizer = Generator.tokenizer(Fixtures.model("tiny-llama")).orElseThrow()) {
            for (int id = 0; id < 128; id++) {
                assertThat(tokenizer.decode(new long[] {id}, true)).as("id %d", id)
                        .isEqualTo(String.valueOf((char) id));
            }
        }
    }

    /**
     * A word-level tokenizer.json whose words map to the golden ids: the text path (DJL's Hugging Face
     * tokenizer, bundled natives, offline) gives the golden tokens back as words.
     */
    @Test
    void aTextPromptGoesThroughTheFoldersTokenizerAndComesBackAsText(@org.junit.jupiter.api.io.TempDir
                                                                      java.nio.file.Path dir) throws Exception {
        StringBuilder vocab = new StringBuilder("\"<unk>\": 0");
        for (int id = 1; id < 256; id++) {
            vocab.append(", \"w").append(id).append("\": ").append(id);
        }
        java.nio.file.Files.writeString(dir.resolve("tokenizer.json"), "{\"version\": \"1.0\", \"truncation\": null, "
                + "\"padding\": null, \"added_tokens\": [], \"normalizer\": null, "
                + "\"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"}, \"post_processor\": null, \"decoder\": null, "
                + "\"model\": {\"type\": \"WordLevel\", \"vocab\": {" + vocab + "}, \"unk_token\": \"<unk>\"}}");
        StringBuilder prompt = new StringBuilder();
        for (long id : golden.inputIds()) {
            prompt.append(prompt.length() == 0 ? "" : " ").append('w').append(id);
        }
        StringBuilder expected = new StringBuilder();
        for (long id : golden.greedy()) {
            expected.append(expected.length() == 0 ? "" : " ").append('w').append(id);
        }
        try (Generator text = new Generator(model, backend, Device.cpu(), Generator.tokenizer(dir).orElseThrow())) {
            assertThat(text.generate(prompt.toString(), GenerationConfig.greedy(8))).isEqualTo(expected.toString());
        }
    }
}
