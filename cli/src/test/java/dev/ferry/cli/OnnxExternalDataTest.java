package dev.ferry.cli;

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

    /**
     * External data truncated while another thread generates: ONNX Runtime gets bytes Ferry read (never a mapping of
     * the file), so the call that meets the short file fails naming it and the JVM lives (before: SIGBUS).
     */
    @Test
    void externalDataTruncatedDuringGenerationIsANamedErrorNotACrash() throws Exception {
        Path dir = tmp.resolve("model");
        Files.createDirectories(dir);
        Path data = dir.resolve("weights.bin");
        externalised(dir, "weights.bin", data);
        java.util.Map<String, Object> map = new java.util.LinkedHashMap<>();
        map.put("model.embed_tokens", "cpu");
        for (int i = 0; i < 3; i++) {
            map.put("model.layers." + i, "cpu");
        }
        map.put("model.layers.3", "disk");
        map.put("model.norm", "cpu");
        map.put("model.rotary_emb", "cpu");
        map.put("lm_head", "cpu");
        long[] prompt = Cli.longs(Cli.golden("tiny-llama").get("input_ids"));
        try (var model = dev.ferry.core.load.Ferry.model(dir).backend("onnx").deviceMap(map).load()) {
            var failure = new java.util.concurrent.atomic.AtomicReference<Throwable>();
            var warm = new java.util.concurrent.CountDownLatch(2);
            Thread generator = new Thread(() -> {
                try {
                    while (true) {
                        long[] out = model.generate(prompt, dev.ferry.core.generate.GenerationConfig.greedy(8));
                        assertThat(out).containsExactly(Cli.goldenTokens("tiny-llama"));
                        warm.countDown();
                    }
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            generator.start();
            assertThat(warm.await(60, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            try (var ch = java.nio.channels.FileChannel.open(data, java.nio.file.StandardOpenOption.WRITE)) {
                ch.truncate(ch.size() / 2);
            }
            generator.join(60_000);
            assertThat(generator.isAlive()).isFalse();
            assertThat(failure.get()).isInstanceOf(RuntimeException.class);
            StringBuilder messages = new StringBuilder();
            for (Throwable t = failure.get(); t != null; t = t.getCause()) {
                messages.append(t.getMessage()).append(" <- ");
            }
            assertThat(messages.toString()).contains("weights.bin");
        }
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
