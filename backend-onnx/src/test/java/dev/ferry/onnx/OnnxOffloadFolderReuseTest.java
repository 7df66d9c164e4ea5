package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.weights.OffloadFolder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * ONNX offload folders are fingerprinted against the model file (and its external data) and reused as the PyTorch
 * backend's are: a second load leaves every file as it was, and processes sharing one folder all run.
 */
class OnnxOffloadFolderReuseTest {

    private static final Set<String> PRELOAD = Set.of("LlamaDecoderLayer");

    @TempDir
    Path tmp;

    @Test
    void aFolderMadeFromTheSameModelIsReusedWithEveryFileUntouched() throws IOException {
        Path dir = tmp.resolve("offload");
        OnnxModuleTree tree = OnnxModuleTree.build(OnnxModel.load(TestModels.fixture("tiny-llama", "model.onnx")));
        DispatchPlan plan = plan(tree);
        try (OffloadFolder first = OnnxOffloadFolders.write(tree, plan, dir, false)) {
            assertThat(first.keys()).isNotEmpty();
        }
        Map<String, String> written = stamps(dir);

        try (OffloadFolder second = OnnxOffloadFolders.write(tree, plan, dir, false)) {
            assertThat(second.keys()).isNotEmpty();
        }

        assertThat(stamps(dir)).isEqualTo(written);
    }

    @Test
    @Timeout(value = 240, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void fourProcessesSharingOneFolderAllGiveTheWholeModelsLogits() throws Exception {
        Path model = TestModels.fixture("tiny-llama", "model.onnx");
        Path dir = tmp.resolve("offload");
        List<Process> processes = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            processes.add(child(model.toString(), dir.toString()));
        }
        List<String> outputs = new ArrayList<>();
        for (Process p : processes) {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(200, TimeUnit.SECONDS)).isTrue();
            assertThat(p.exitValue()).as(out).isZero();
            outputs.add(out.lines().filter(s -> s.startsWith("OUT ")).findFirst().orElseThrow(() -> new AssertionError(out)));
        }
        float[] whole;
        try (OnnxTensor in = Ort.ids(inputIds())) {
            whole = Ort.whole(model, Map.of("input_ids", in), "logits");
        }
        for (String o : outputs) {
            assertThat(Ort.maxAbsDiff(decode(o.split(" ")[1]), whole)).as(o).isLessThanOrEqualTo(1e-5);
        }
        // the lock makes exactly one of them write; the other three wait, then reuse what it wrote
        assertThat(outputs.stream().filter(o -> o.endsWith("REUSED false"))).hasSize(1);
    }

    private static DispatchPlan plan(OnnxModuleTree tree) {
        return OnnxDispatchedModel.plan(tree, DeviceMap.of(CausalLmFidelityTest.llamaMap()), new PreloadRule(PRELOAD));
    }

    private static long[] inputIds() {
        JsonNode golden = TestModels.json(TestModels.fixture("tiny-llama", "golden.json"));
        long[] ids = new long[golden.get("input_ids").size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = golden.get("input_ids").get(i).asLong();
        }
        return ids;
    }

    /** Each file of the folder to its size, modification time and identity. */
    private static Map<String, String> stamps(Path dir) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) {
                BasicFileAttributes a = Files.readAttributes(f, BasicFileAttributes.class);
                out.put(f.getFileName().toString(), a.size() + " " + a.lastModifiedTime().to(TimeUnit.NANOSECONDS)
                        + " " + a.fileKey());
            }
        }
        return out;
    }

    /**
     * A child JVM: {@code MODEL DIR} dispatches tiny-llama with layer 2 on disk in the offload folder DIR and prints
     * {@code OUT <logits> REUSED <whether the folder was reused>}.
     */
    public static void main(String[] args) throws Exception {
        OnnxModuleTree tree = OnnxModuleTree.build(OnnxModel.load(Path.of(args[0])));
        DispatchPlan plan = plan(tree);
        OffloadFolder.Prepared prepared = OnnxOffloadFolders.prepare(tree, plan, Path.of(args[1]), false);
        float[] logits;
        try (OffloadFolder folder = prepared.folder();
             OnnxTensor in = Ort.ids(inputIds());
             OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(tree, plan,
                     CausalLmFidelityTest.OPTIONS.withDiskStore(folder));
             OnnxRunResult r = d.run(Map.of("input_ids", in))) {
            logits = r.floats("logits");
        }
        StringBuilder sb = new StringBuilder();
        for (float f : logits) {
            sb.append(sb.length() == 0 ? "" : ",").append(Integer.toHexString(Float.floatToRawIntBits(f)));
        }
        System.out.println("OUT " + sb + " REUSED " + prepared.reused());
        System.out.flush();
    }

    private static float[] decode(String hex) {
        String[] parts = hex.split(",");
        float[] v = new float[parts.length];
        for (int i = 0; i < v.length; i++) {
            v[i] = Float.intBitsToFloat(Integer.parseUnsignedInt(parts[i], 16));
        }
        return v;
    }

    private static Process child(String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("-Xmx256m");
        cmd.add("-Xss4m"); // ONNX Runtime 1.29 on a JVM's main thread can overflow the default 1 MiB stack (SIGSEGV)
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn");
        cmd.add(OnnxOffloadFolderReuseTest.class.getName());
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).start();
    }
}
