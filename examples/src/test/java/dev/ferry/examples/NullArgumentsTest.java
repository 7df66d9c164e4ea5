package dev.ferry.examples;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.Fixtures;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Nulls through the API are named errors (before: a raw NullPointerException from deep inside). */
class NullArgumentsTest {

    static final GenerationConfig GREEDY = GenerationConfig.greedy(2);

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void nullArgumentsOfADispatchedModelNameTheParameter(String backend) {
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).backend(backend).load()) {
            assertThatThrownBy(() -> model.generate((long[]) null, GREEDY)).isInstanceOf(NullPointerException.class)
                    .hasMessageContaining("prompt is null");
            assertThatThrownBy(() -> model.generate(new long[] {1, 2}, null)).isInstanceOf(NullPointerException.class)
                    .hasMessageContaining("config is null");
            assertThatThrownBy(() -> model.generate((long[][]) null, GREEDY)).isInstanceOf(NullPointerException.class)
                    .hasMessageContaining("prompts is null");
            assertThatThrownBy(() -> model.generate(new long[][] {{1}, null}, GREEDY))
                    .isInstanceOf(NullPointerException.class).hasMessageContaining("prompts[1] is null");
            assertThatThrownBy(() -> model.generate((String) null, GREEDY)).isInstanceOf(NullPointerException.class)
                    .hasMessageContaining("prompt is null");
            assertThatThrownBy(() -> model.logits(null)).isInstanceOf(NullPointerException.class)
                    .hasMessageContaining("prompt is null");
            assertThatThrownBy(() -> model.languageModel().logits(null)).isInstanceOf(NullPointerException.class)
                    .hasMessageContaining("prompt is null");
        }
    }

    @Test
    void nullPyTorchEmbedRowsAreNamed() {
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).backend("pytorch").load()) {
            assertThatThrownBy(() -> model.embed(null)).hasMessageContaining("prompts is null");
            assertThatThrownBy(() -> model.embed(new long[][] {null})).hasMessageContaining("prompts[0] is null");
        }
    }

    @Test
    void nullBuilderOptionsAreNamed() {
        Ferry.Builder b = Ferry.model(Fixtures.model("tiny-llama"));
        assertThatThrownBy(() -> Ferry.model(null)).hasMessageContaining("model folder: null");
        assertThatThrownBy(() -> b.maxMemory((Map<?, ?>) null)).hasMessageContaining("maxMemory: null");
        assertThatThrownBy(() -> b.maxMemory((String) null)).hasMessageContaining("maxMemory");
        assertThatThrownBy(() -> b.noSplit((String[]) null)).hasMessageContaining("noSplit: null");
        assertThatThrownBy(() -> b.preload("LlamaDecoderLayer", null)).hasMessageContaining("preload: class name 1");
        assertThatThrownBy(() -> b.offloadFolder(null)).hasMessageContaining("offloadFolder: null");
        assertThatThrownBy(() -> b.dtype((String) null)).hasMessageContaining("dtype: null");
        assertThatThrownBy(() -> b.backend(null)).hasMessageContaining("backend: null");
        assertThatThrownBy(() -> b.deviceMap((String) null)).hasMessageContaining("deviceMap: null");
        assertThatThrownBy(() -> GREEDY.withEos(Arrays.asList(1L, null))).hasMessageContaining("eosTokenIds holds null");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void aMalformedTokenizerJsonIsAnErrorNamingTheFile(String backend, @org.junit.jupiter.api.io.TempDir Path tmp)
            throws Exception {
        Path dir = java.nio.file.Files.createDirectories(tmp.resolve("m"));
        try (var files = java.nio.file.Files.list(Fixtures.model("tiny-llama"))) {
            for (Path f : files.toList()) {
                java.nio.file.Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        Path tokenizer = java.nio.file.Files.writeString(dir.resolve("tokenizer.json"), "{\"version\": \"1.0\", oops");
        assertThatThrownBy(() -> {
            try (DispatchedModel model = Ferry.model(dir).backend(backend).load()) {
                model.generate("Hi", GREEDY);
            }
        }).isInstanceOf(IllegalArgumentException.class).hasMessageContaining(tokenizer.toString())
                .hasMessageContaining("not a valid tokenizer.json");
    }
}
