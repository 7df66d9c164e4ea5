package dev.ferry.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.config.ConfigException;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.NonFiniteLogitsException;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsFile;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Numbers checked at the door and at the end, end to end: a config float that would make NaN is refused when the
 * model loads (before: new_tokens [0, 0, ...] with exit 0), weights that make NaN logits stop generation with a named
 * error, and a temperature whose scores overflow samples greedily (before, on ONNX: token -1 eight times).
 */
class NumbersAtTheEndTest {

    @TempDir
    Path tmp;

    Path copy() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("tiny-llama"));
        try (Stream<Path> files = Files.list(Fixtures.model("tiny-llama"))) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        return dir;
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void aRopeThetaOfAbcIsRefusedWhenTheModelLoads(String backend) throws IOException {
        Path dir = copy();
        ObjectNode config = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        config.put("rope_theta", "abc");
        Files.writeString(dir.resolve("config.json"), config.toString());
        assertThatThrownBy(() -> {
            try (DispatchedModel m = Ferry.model(dir).backend(backend).load()) {
                m.generate(new long[] {1, 2}, GenerationConfig.greedy(2));
            }
        }).isInstanceOf(ConfigException.class).hasMessageContaining("rope_theta must be a number, got \"abc\"");
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch"})
    void weightsThatMakeNanLogitsStopGenerationWithANamedError(String backend) throws IOException {
        Path dir = copy();
        Path shard = dir.resolve("model-00004-of-00004.safetensors");
        long offset;
        long size;
        try (SafetensorsFile f = SafetensorsFile.open(shard)) {
            offset = f.entry("lm_head.weight").fileOffset();
            size = f.entry("lm_head.weight").byteSize();
        }
        ByteBuffer nan = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
        while (nan.hasRemaining()) {
            nan.putFloat(Float.NaN);
        }
        try (FileChannel ch = FileChannel.open(shard, StandardOpenOption.WRITE)) {
            ch.write(nan.flip(), offset + size - 256); // the head's last row: one token's logit is NaN
        }
        try (DispatchedModel m = Ferry.model(dir).backend(backend).load()) {
            assertThatThrownBy(() -> m.generate(new long[] {1, 2, 3}, GenerationConfig.greedy(4)))
                    .isInstanceOf(NonFiniteLogitsException.class).hasMessageContaining("NaN")
                    .hasMessageContaining("token id 255");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void aTemperatureOf1eMinus320SamplesGreedilyNotTokenMinusOne(String backend) throws IOException {
        JsonNode golden = FerryBuilderTest.golden("tiny-llama");
        try (DispatchedModel m = Ferry.model(Fixtures.model("tiny-llama")).backend(backend).load()) {
            long[] out = m.generate(FerryBuilderTest.longs(golden.get("input_ids")),
                    GenerationConfig.sampled(8, 1e-320, 0, 1.0, 0));
            assertThat(out).containsExactly(FerryBuilderTest.longs(golden.get("greedy_new_tokens")));
        }
    }
}
