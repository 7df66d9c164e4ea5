package dev.ferry.core.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The checkpoints people have, named before any weight is read, by the builder as by {@link ModelFolder}. */
class ModelFolderTest {

    @TempDir
    Path tmp;

    private Path folderWith(String... files) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("model"));
        for (String f : files) {
            if (f.equals("config.json")) {
                Files.copy(Fixtures.dir().resolve("tiny-llama/config.json"), dir.resolve(f));
            } else {
                Files.write(dir.resolve(f), new byte[] {1, 2, 3, 4});
            }
        }
        return dir;
    }

    @Test
    void aPytorchModelBinOnlyFolderSaysFerryReadsSafetensorsAndHowToConvert() throws IOException {
        Path dir = folderWith("config.json", "pytorch_model.bin");
        assertThatThrownBy(() -> Ferry.model(dir).backend("pytorch").load())
                .isInstanceOf(ModelFolderException.class)
                .hasMessageContaining("pytorch_model.bin")
                .hasMessageContaining("Ferry reads safetensors only")
                .hasMessageContaining("save_pretrained(\"" + dir + "-safetensors\", safe_serialization=True)");
    }

    @Test
    void aGgufFileIsRecognisedByItsMagic() throws IOException {
        Path file = tmp.resolve("llama-q4.bin");
        Files.write(file, new byte[] {'G', 'G', 'U', 'F', 3, 0, 0, 0});
        assertThatThrownBy(() -> Ferry.model(file).load())
                .isInstanceOf(ModelFolderException.class)
                .hasMessageContaining(file + " is a GGUF file (llama.cpp's format")
                .hasMessageContaining("original repository");
    }

    @Test
    void aFolderOfGgufFilesIsNamedAsSuch() throws IOException {
        Path dir = folderWith("model-Q4_K_M.gguf");
        assertThatThrownBy(() -> ModelFolder.inspect(dir))
                .isInstanceOf(ModelFolderException.class)
                .hasMessageContaining("holds GGUF files (model-Q4_K_M.gguf)");
    }

    @Test
    void aFileThatIsNotGgufAsksForTheFolder() throws IOException {
        Path file = Files.writeString(tmp.resolve("model.safetensors"), "{}");
        assertThatThrownBy(() -> ModelFolder.inspect(file))
                .hasMessageContaining(file + " is a file; pass the model's folder");
    }

    @Test
    void aFolderWithoutConfigJsonSaysIncompleteOrGatedDownloadThroughTheBuilder() throws IOException {
        Path dir = folderWith("model.safetensors", "tokenizer.json");
        assertThatThrownBy(() -> Ferry.model(dir).load())
                .isInstanceOf(ModelFolderException.class)
                .hasMessageContaining(dir + " has no config.json (nor model.onnx)")
                .hasMessageContaining("gated model")
                .hasMessageContaining("found model.safetensors, tokenizer.json")
                .hasMessageNotContaining("no backend on the class path");
    }

    @Test
    void anInterruptedDownloadIsSaidToBeOne() throws IOException {
        Path dir = folderWith("model.safetensors.incomplete");
        assertThatThrownBy(() -> ModelFolder.inspect(dir)).hasMessageContaining("the download was interrupted");
    }

    @Test
    void configWithoutWeightsIsEnoughToPlanButNotToLoad() throws IOException {
        Path dir = folderWith("config.json");
        ModelFolder f = ModelFolder.inspect(dir);
        assertThat(f.config()).isTrue();
        assertThat(f.safetensors()).isFalse();
        assertThatThrownBy(() -> f.requireWeightsFor("pytorch"))
                .hasMessageContaining("has config.json but no weights");
    }

    @Test
    void aShardMissingFromTheIndexIsNamed() throws IOException {
        Path dir = folderWith("config.json", "model-00001-of-00002.safetensors");
        Files.writeString(dir.resolve("model.safetensors.index.json"), """
                {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                 "b": "model-00002-of-00002.safetensors"}}""");
        assertThatThrownBy(() -> ModelFolder.inspect(dir).requireWeightsFor("pytorch"))
                .isInstanceOf(ModelFolderException.class)
                .hasMessageContaining("lists 1 shard(s) that are not in the folder (model-00002-of-00002.safetensors)");
    }

    @Test
    void theOnnxBackendNeedsModelOnnx() throws IOException {
        Path dir = folderWith("config.json", "model.safetensors");
        assertThatThrownBy(() -> ModelFolder.inspect(dir).requireWeightsFor("onnx"))
                .hasMessageContaining("has no model.onnx");
    }

    @Test
    void theFixturesPass() {
        ModelFolder f = ModelFolder.inspect(Fixtures.dir().resolve("tiny-llama")).requireWeightsFor("pytorch")
                .requireWeightsFor("onnx");
        assertThat(f.config()).isTrue();
        assertThat(f.safetensors()).isTrue();
        assertThat(f.onnx()).isTrue();
    }
}
