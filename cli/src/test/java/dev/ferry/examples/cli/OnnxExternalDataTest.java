package dev.ferry.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code generate --backend onnx} never reads external data from outside the model folder. */
class OnnxExternalDataTest {

    @TempDir
    Path tmp;

    /** tiny-llama's export in {@code dir}, its large initializers moved to {@code location}, written at {@code data}. */
    private Path externalised(Path dir, String location, Path data) throws Exception {
        Path fixture = Path.of(Cli.model("tiny-llama"));
        ModelProto m = ModelProto.parseFrom(Files.readAllBytes(fixture.resolve("model.onnx")));
        GraphProto.Builder g = m.getGraph().toBuilder();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            TensorProto t = g.getInitializer(i);
            if (t.getRawData().size() < 4096) {
                continue;
            }
            long offset = bytes.size();
            t.getRawData().writeTo(bytes);
            g.setInitializer(i, t.toBuilder().clearRawData().setDataLocation(TensorProto.DataLocation.EXTERNAL)
                    .addExternalData(e("location", location)).addExternalData(e("offset", "" + offset))
                    .addExternalData(e("length", "" + t.getRawData().size())).build());
        }
        Files.createDirectories(dir);
        Files.copy(fixture.resolve("config.json"), dir.resolve("config.json"));
        Files.write(data, bytes.toByteArray());
        Files.write(dir.resolve("model.onnx"), m.toBuilder().setGraph(g).build().toByteArray());
        return dir;
    }

    private static StringStringEntryProto e(String k, String v) {
        return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
    }

    @Test
    void externalDataInsideTheFolderGivesTheGoldenTokens() throws Exception {
        Path dir = tmp.resolve("model");
        Files.createDirectories(dir);
        externalised(dir, "weights.bin", dir.resolve("weights.bin"));
        Cli r = Cli.run("generate", "--backend", "onnx", "--model", dir.toString(), "--input-ids",
                Cli.goldenPrompt("tiny-llama"), "--max-memory", "cpu=300KiB", "--format", "json");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(Cli.longs(r.json().get("new_tokens"))).containsExactly(Cli.goldenTokens("tiny-llama"));
    }

    @Test
    void externalDataOutsideTheFolderIsRefusedNamingTheLocation() throws Exception {
        Path dir = tmp.resolve("model");
        Files.createDirectories(dir);
        externalised(dir, "../weights.bin", tmp.resolve("weights.bin"));
        Cli r = Cli.run("generate", "--backend", "onnx", "--model", dir.toString(), "--input-ids", "1,2");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(1);
        assertThat(r.err().strip().lines()).as(r.toString()).hasSize(1);
        assertThat(r.err()).contains("'../weights.bin'", "inside the model's folder");
        assertThat(r.out()).isEmpty();
    }
}
