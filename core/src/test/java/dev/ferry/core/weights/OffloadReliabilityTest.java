package dev.ferry.core.weights;

import static dev.ferry.core.weights.OffloadHarness.load;
import static dev.ferry.core.weights.OffloadHarness.snapshot;
import static dev.ferry.core.weights.OffloadHarness.withoutFerrysFiles;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.assertj.core.api.Assertions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Offload folders under hostile conditions: foreign folders, planted links, a checkpoint swapped or truncated
 * underneath, a writer killed half way, four processes on one folder. Each test checks the outcome (the model's
 * numbers, or the named error) and that no byte outside Ferry's own files changed.
 */
class OffloadReliabilityTest {

    private static final String DAT = "model.layers.3.attn.weight.dat";

    @TempDir
    Path root;

    private Path checkpoint;
    private Path offload;
    private Path victim;
    private float[] expected;

    @BeforeEach
    void setUp() throws IOException {
        checkpoint = OffloadHarness.saveBf16(Files.createDirectory(root.resolve("ckpt")).resolve("model.safetensors"), 11);
        offload = root.resolve("offload");
        victim = Files.write(root.resolve("victim.bin"), "precious user data".getBytes(StandardCharsets.UTF_8));
        expected = OffloadHarness.residentOutput(checkpoint);
    }

    // ---------------------------------------------------------------- ownership

    @Test
    void aNewFolderIsWrittenThenReusedUntouched() {
        OffloadHarness.Loaded first = load(checkpoint, offload, false);
        assertThat(first.reused()).isFalse();
        assertThat(first.output()).containsExactly(expected);
        assertThat(offload.resolve(DAT)).isRegularFile();
        Map<String, String> written = snapshot(root);

        OffloadHarness.Loaded second = load(checkpoint, offload, false);
        assertThat(second.reused()).isTrue();
        assertThat(second.output()).containsExactly(expected);
        assertThat(snapshot(root)).isEqualTo(written);
    }

    @Test
    void aForeignOffloadFolderIsRefusedAndLeftByteIdentical() throws IOException {
        Files.createDirectory(offload);
        // Accelerate's layout, for the very keys the model offloads: today's bug deleted every <key>.dat of it
        Files.writeString(offload.resolve("index.json"),
                "{\"model.layers.3.attn.weight\": {\"dtype\": \"float32\", \"shape\": [64, 64]}}");
        Files.write(offload.resolve(DAT), new byte[64 * 64 * 4]);
        Files.writeString(offload.resolve("notes.txt"), "mine");
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> load(checkpoint, offload, false)).isInstanceOf(OffloadFolderRefusedException.class)
                .hasMessageContaining(offload.toRealPath().toString()).hasMessageContaining("index.json")
                .hasMessageContaining("notes.txt").hasMessageContaining("--overwrite-offload-dir");
        assertThat(snapshot(root)).isEqualTo(before);
    }

    @Test
    void aForeignOffloadFolderIsRewrittenWhenAllowedAndItsOtherFilesKept() throws IOException {
        Files.createDirectory(offload);
        Files.writeString(offload.resolve("index.json"), "{\"old.key\": {\"dtype\": \"float32\", \"shape\": [2]}}");
        Files.write(offload.resolve("old.key.dat"), new byte[8]);
        Files.writeString(offload.resolve("notes.txt"), "mine");
        Map<String, String> before = snapshot(root);

        OffloadHarness.Loaded l = load(checkpoint, offload, true);

        assertThat(l.output()).containsExactly(expected);
        assertThat(l.reused()).isFalse();
        // the old index was replaced (allowed); old.key.dat, which the new index does not use, is not deleted
        assertThat(withoutFerrysFiles(snapshot(root), root, offload))
                .isEqualTo(withoutFerrysFiles(before, root, offload)).containsKeys("offload/old.key.dat", "offload/notes.txt");
    }

    @Test
    void aFolderThatIsNotAnOffloadFolderIsRefusedEvenWithOverwrite() throws IOException {
        Files.createDirectory(offload);
        Files.writeString(offload.resolve("thesis.tex"), "years of work");
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> load(checkpoint, offload, true)).isInstanceOf(OffloadFolderRefusedException.class)
                .hasMessageContaining("not an offload folder").hasMessageContaining("thesis.tex");
        assertThat(snapshot(root)).isEqualTo(before);
    }

    @Test
    void aFileFerryDidNotWriteAtANameItNeedsIsRefusedNotReplaced() throws IOException {
        load(checkpoint, offload, false);
        // the user drops a file in Ferry's folder at the name of a tensor Ferry will have to write anew
        Files.delete(offload.resolve(DAT));
        Files.writeString(offload.resolve("model.layers.4.attn.weight.dat.bak"), "x");
        OffloadMarker marker = OffloadMarker.read(offload);
        assertThat(marker.owned()).contains(DAT).doesNotContain("model.layers.4.attn.weight.dat.bak");
        // a name the marker does not list is never Ferry's: rewriting leaves it alone
        Map<String, String> before = withoutFerrysFiles(snapshot(root), root, offload);

        OffloadHarness.Loaded l = load(checkpoint, offload, false);

        assertThat(l.reused()).isFalse();
        assertThat(l.output()).containsExactly(expected);
        assertThat(withoutFerrysFiles(snapshot(root), root, offload)).isEqualTo(before);
    }

    @Test
    void filesFerryWritesShareOneMode() throws IOException {
        load(checkpoint, offload, false);
        Set<String> modes = new TreeSet<>();
        try (var files = Files.list(offload)) {
            for (Path f : files.toList()) {
                modes.add(PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
            }
        }
        assertThat(modes).hasSize(1);
    }

    // ---------------------------------------------------------------- links

    @Test
    void aLinkPlantedAtADatNameIsRefusedAndNeitherItNorItsTargetTouched() throws IOException {
        load(checkpoint, offload, false);
        Files.delete(offload.resolve(DAT));
        Files.createSymbolicLink(offload.resolve(DAT), victim);
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> load(checkpoint, offload, false)).isInstanceOf(OffloadFolderRefusedException.class)
                .hasMessageContaining(DAT).hasMessageContaining("symbolic link");
        assertThat(snapshot(root)).isEqualTo(before);
    }

    @Test
    void aLinkPlantedAtFerrysTemporaryNameIsNeitherFollowedNorRemoved() throws IOException {
        load(checkpoint, offload, false);
        Path partial = offload.resolve("." + DAT + ".partial");
        Files.createSymbolicLink(partial, victim);
        // a newer checkpoint time forces a rewrite, which would write through the link if it followed it
        Files.setLastModifiedTime(checkpoint, FileTime.fromMillis(Files.getLastModifiedTime(checkpoint).toMillis() + 5000));
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> load(checkpoint, offload, false)).hasMessageContaining(partial.getFileName().toString());
        Map<String, String> after = snapshot(root);
        assertThat(after.get("victim.bin")).isEqualTo(before.get("victim.bin"));
        assertThat(after.get("offload/" + partial.getFileName())).isEqualTo("link->" + victim);
        assertThat(withoutFerrysFiles(after, root, offload)).isEqualTo(withoutFerrysFiles(before, root, offload));
    }

    @Test
    void aLinkPlantedAtTheLockFileIsNotFollowed() throws IOException {
        Files.createDirectory(offload);
        Files.createSymbolicLink(offload.resolve(FolderLock.NAME), victim);
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> load(checkpoint, offload, false)).hasMessageContaining(FolderLock.NAME);
        assertThat(snapshot(root)).isEqualTo(before);
    }

    // ---------------------------------------------------------------- what a folder was made from

    @Test
    void aCheckpointSwappedUnderAReusedFolderRewritesIt() throws IOException {
        load(checkpoint, offload, false);
        // another model with the same names, dtypes and shapes, replacing the file in place
        Path other = OffloadHarness.saveBf16(root.resolve("other.safetensors"), 12);
        Files.move(other, checkpoint, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        float[] otherExpected = OffloadHarness.residentOutput(checkpoint);
        assertThat(otherExpected).isNotEqualTo(expected);

        OffloadHarness.Loaded l = load(checkpoint, offload, false);

        assertThat(l.reused()).isFalse();
        assertThat(l.output()).containsExactly(otherExpected);
    }

    @Test
    void aDatReplacedBySameSizeGarbageIsRewrittenNotReused() throws IOException {
        load(checkpoint, offload, false);
        byte[] garbage = new byte[(int) Files.size(offload.resolve(DAT))];
        new Random(5).nextBytes(garbage);
        Files.write(offload.resolve(DAT), garbage);

        OffloadHarness.Loaded l = load(checkpoint, offload, false);

        assertThat(l.reused()).isFalse();
        assertThat(l.output()).containsExactly(expected);
    }

    @Test
    void aDatReplacedBySameSizeGarbageWithItsOldTimeIsRewrittenNotReused() throws IOException {
        load(checkpoint, offload, false);
        Path dat = offload.resolve(DAT);
        FileTime time = Files.getLastModifiedTime(dat);
        byte[] garbage = new byte[(int) Files.size(dat)];
        new Random(5).nextBytes(garbage);
        Files.write(dat, garbage);
        Files.setLastModifiedTime(dat, time);

        OffloadHarness.Loaded l = load(checkpoint, offload, false);

        assertThat(l.reused()).isFalse();
        assertThat(l.output()).containsExactly(expected);
    }

    @Test
    void aDatChangedWhileTheFolderIsOpenFailsOnItsFirstReadAndDoingWhatTheErrorSaysRewritesIt() throws IOException {
        load(checkpoint, offload, false);
        Path dat = offload.resolve(DAT);
        try (OffloadFolder f = OffloadFolder.open(offload)) {
            FileTime time = Files.getLastModifiedTime(dat);
            byte[] garbage = new byte[(int) Files.size(dat)];
            new Random(5).nextBytes(garbage);
            try (FileChannel ch = FileChannel.open(dat, StandardOpenOption.WRITE)) {
                ch.write(java.nio.ByteBuffer.wrap(garbage));
            }
            Files.setLastModifiedTime(dat, time);
            assertThatThrownBy(() -> f.bytes("model.layers.3.attn.weight")).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("does not hold what Ferry wrote").hasMessageContaining("delete " + dat.toRealPath())
                    .hasMessageContaining("load the model again");
        }
        Files.delete(dat);

        OffloadHarness.Loaded l = load(checkpoint, offload, false);

        assertThat(l.reused()).isFalse();
        assertThat(l.output()).containsExactly(expected);
    }

    // ---------------------------------------------------------------- paths

    private void foreignIndexPointingTo(String path) throws IOException {
        Files.createDirectories(offload);
        Files.writeString(offload.resolve("index.json"), "{\"w\": {\"safetensors_file\": \""
                + path.replace("\\", "\\\\") + "\", \"weight_name\": \"model.layers.3.attn.weight\"}}");
    }

    @Test
    void anIndexEntryClimbingOutOfTheFolderIsANamedError() throws IOException {
        foreignIndexPointingTo("../ckpt/model.safetensors");
        Map<String, String> before = snapshot(root);
        assertThatThrownBy(() -> OffloadFolder.open(offload)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'w'").hasMessageContaining("'../ckpt/model.safetensors'")
                .hasMessageContaining("outside the offload folder");
        assertThat(snapshot(root)).isEqualTo(before);
    }

    @Test
    void anAbsoluteIndexEntryOutsideTheFolderIsANamedError() throws IOException {
        foreignIndexPointingTo(checkpoint.toAbsolutePath().toString());
        assertThatThrownBy(() -> OffloadFolder.open(offload)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'w'").hasMessageContaining("outside the offload folder");
    }

    @Test
    void anIndexEntryThroughALinkLeadingOutIsANamedError() throws IOException {
        foreignIndexPointingTo("inside.safetensors");
        Files.createSymbolicLink(offload.resolve("inside.safetensors"), checkpoint);
        assertThatThrownBy(() -> OffloadFolder.open(offload)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'w'").hasMessageContaining("leads to " + checkpoint.toRealPath())
                .hasMessageContaining("outside the offload folder");
    }

    @Test
    void anIndexEntryIntoTheCheckpointFolderTheCallerNamesIsRead() throws IOException {
        foreignIndexPointingTo(checkpoint.toAbsolutePath().toString());
        try (OffloadFolder f = OffloadFolder.open(offload, List.of(checkpoint.getParent()));
             SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(checkpoint)) {
            assertThat(TestFiles.bytesOf(f.bytes("w"))).isEqualTo(TestFiles.bytesOf(ckpt.bytes("model.layers.3.attn.weight")));
        }
    }

    // ---------------------------------------------------------------- files changing underneath

    @Test
    void aCheckpointTruncatedWhileTheModelRunsIsANamedError() throws IOException {
        dev.ferry.core.testing.TestBackend backend = new dev.ferry.core.testing.TestBackend(0);
        var m = OffloadHarness.onMeta(backend);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(checkpoint)) {
            // disk layers read in place from the checkpoint, at every forward
            new dev.ferry.core.dispatch.CheckpointDispatcher(backend, new dev.ferry.core.dispatch.Dispatcher(backend))
                    .loadAndDispatch(m, ckpt, dev.ferry.core.dispatch.CheckpointDispatcher.Options.of(OffloadHarness.map())
                            .withDispatch(dev.ferry.core.dispatch.DispatchOptions.of(OffloadHarness.map())
                                    .withPrefetchBlocks(0)));
            assertThat(OffloadHarness.run(backend, m)).containsExactly(expected);
            long size = Files.size(checkpoint);
            try (FileChannel ch = FileChannel.open(checkpoint, StandardOpenOption.WRITE)) {
                ch.truncate(size / 2);
            }
            assertThatThrownBy(() -> OffloadHarness.run(backend, m)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining(checkpoint.toString()).hasMessageContaining("changed since it was opened")
                    .hasMessageContaining(size + " bytes").hasMessageContaining((size / 2) + " bytes");
            dev.ferry.core.dispatch.Dispatcher.remove(m);
        }
    }

    @Test
    void aDatTruncatedWhileTheFolderIsOpenIsANamedError() throws IOException {
        load(checkpoint, offload, false);
        try (OffloadFolder f = OffloadFolder.open(offload)) {
            try (FileChannel ch = FileChannel.open(offload.resolve(DAT), StandardOpenOption.WRITE)) {
                ch.truncate(16);
            }
            assertThatThrownBy(() -> f.bytes("model.layers.3.attn.weight")).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining(DAT).hasMessageContaining("16 bytes").hasMessageContaining("changed since");
        }
    }

    // ---------------------------------------------------------------- several processes

    @Test
    @Timeout(120)
    void aWriterKilledHalfWayThenARerunGivesTheRightNumbers() throws Exception {
        Map<String, String> checkpointBefore = snapshot(checkpoint.getParent());
        Process p = OffloadHarness.child("slow-write", checkpoint.toString(), offload.toString());
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            int written = 0;
            while ((line = r.readLine()) != null && written < 3) {
                if (line.startsWith("WRITING")) {
                    written++;
                }
            }
            assertThat(written).as("the child wrote three tensors").isEqualTo(3);
            p.destroyForcibly(); // SIGKILL: no finally block, no shutdown hook runs
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(OffloadMarker.read(offload).state).isEqualTo(OffloadMarker.State.WRITING);
        assertThat(offload.resolve("index.json")).doesNotExist();
        assertThatThrownBy(() -> OffloadFolder.open(offload)).isInstanceOf(WeightsFormatException.class);

        OffloadHarness.Loaded l = load(checkpoint, offload, false);

        assertThat(l.reused()).isFalse();
        assertThat(l.output()).containsExactly(expected);
        assertThat(OffloadMarker.read(offload).state).isEqualTo(OffloadMarker.State.COMPLETE);
        // only Ferry's own files are left in the folder (the killed writer's extra .dat files were removed)
        assertThat(withoutFerrysFiles(snapshot(offload), offload, offload)).isEmpty();
        try (var files = Files.list(offload)) {
            assertThat(files.map(f -> f.getFileName().toString()).filter(n -> n.endsWith(".partial"))).isEmpty();
        }
        assertThat(snapshot(checkpoint.getParent())).isEqualTo(checkpointBefore);
    }

    @Test
    @Timeout(180)
    void fourProcessesOnOneFreshFolderAllGiveTheSameNumbers() throws Exception {
        Map<String, String> checkpointBefore = snapshot(checkpoint.getParent());
        List<Process> processes = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            processes.add(OffloadHarness.child("load", checkpoint.toString(), offload.toString()));
        }
        List<String> outputs = new ArrayList<>();
        for (Process p : processes) {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
            assertThat(p.exitValue()).as(out).isZero();
            outputs.add(out.lines().filter(s -> s.startsWith("OUT ")).findFirst().orElseThrow(() -> new AssertionError(out)));
        }
        String want = "OUT " + OffloadHarness.encode(expected);
        assertThat(outputs).allSatisfy(o -> assertThat(o).startsWith(want + " REUSED "));
        // the lock makes exactly one of them write; the other three wait, then reuse what it wrote
        assertThat(outputs.stream().filter(o -> o.endsWith("REUSED false"))).hasSize(1);
        assertThat(withoutFerrysFiles(snapshot(offload), offload, offload)).isEmpty();
        assertThat(snapshot(checkpoint.getParent())).isEqualTo(checkpointBefore);
    }
}
