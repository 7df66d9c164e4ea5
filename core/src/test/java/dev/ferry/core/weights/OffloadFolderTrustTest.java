package dev.ferry.core.weights;

import static dev.ferry.core.weights.OffloadHarness.load;
import static dev.ferry.core.weights.OffloadHarness.snapshot;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assumptions.assumeThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A folder's own files are data, not instructions: a planted or edited {@code ferry-offload.json} or {@code
 * index.json} cannot make Ferry delete, read or open anything but regular files of its own layout inside the folder.
 * Every test plants something aimed at a canary file outside the folder and checks that it survives byte for byte.
 */
class OffloadFolderTrustTest {

    private static final String DAT = "model.layers.3.attn.weight.dat";

    @TempDir
    Path root;

    private Path checkpoint;
    private Path offload;
    private Path canary;
    private float[] expected;

    @BeforeEach
    void setUp() throws IOException {
        checkpoint = OffloadHarness.saveBf16(Files.createDirectory(root.resolve("ckpt")).resolve("model.safetensors"), 11);
        offload = root.resolve("offload");
        canary = Files.write(root.resolve("canary.bin"), "precious user data".getBytes(StandardCharsets.UTF_8));
        expected = OffloadHarness.residentOutput(checkpoint);
    }

    /** Edits the folder's marker as a hostile or careless user would, keeping it a well-formed Ferry marker. */
    private void editMarker(Consumer<ObjectNode> edit) {
        Path file = offload.resolve(OffloadMarker.NAME);
        try {
            ObjectNode m = (ObjectNode) Json.MAPPER.readTree(file.toFile());
            edit.accept(m);
            Files.writeString(file, Json.MAPPER.writeValueAsString(m));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A record for {@code target} in a marker's "files", with its real size and time, as a forger would write. */
    private static void listAsWritten(ObjectNode marker, String name, Path target) {
        try {
            marker.with("files").putObject(name).put("size", Files.size(target))
                    .put("mtime_ns", Files.getLastModifiedTime(target).to(TimeUnit.NANOSECONDS));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A newer checkpoint time: the next load must rewrite the folder, deleting what its marker lists and no longer needs. */
    private void forceRewrite() throws IOException {
        Files.setLastModifiedTime(checkpoint, FileTime.fromMillis(Files.getLastModifiedTime(checkpoint).toMillis() + 5000));
    }

    // ---------------------------------------------------------------- names in a marker

    @ParameterizedTest(name = "listed in \"{0}\"")
    @ValueSource(strings = {"claimed", "files"})
    void aMarkerListingAnAbsolutePathIsRefusedAndTheCanarySurvives(String field) throws IOException {
        load(checkpoint, offload, false);
        String name = canary.toAbsolutePath().toString();
        editMarker(m -> plant(m, field, name, canary));
        forceRewrite();
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> load(checkpoint, offload, false)).isInstanceOf(OffloadFolderRefusedException.class)
                .hasMessageContaining("'" + name + "'").hasMessageContaining("\"" + field + "\"")
                .hasMessageContaining("not a plain file name");
        assertThat(snapshot(root)).isEqualTo(before);
    }

    @ParameterizedTest(name = "listed in \"{0}\"")
    @ValueSource(strings = {"claimed", "files"})
    void aMarkerListingADotDotNameIsRefusedAndTheCanarySurvives(String field) throws IOException {
        load(checkpoint, offload, false);
        editMarker(m -> plant(m, field, "../canary.bin", canary));
        forceRewrite();
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> load(checkpoint, offload, false)).isInstanceOf(OffloadFolderRefusedException.class)
                .hasMessageContaining("'../canary.bin'").hasMessageContaining("not a plain file name");
        assertThat(snapshot(root)).isEqualTo(before);
    }

    @ParameterizedTest(name = "listed in \"{0}\"")
    @ValueSource(strings = {"claimed", "files"})
    void aMarkerListingALinkPlantedInTheFolderIsRefusedAndTheCanarySurvives(String field) throws IOException {
        load(checkpoint, offload, false);
        Files.createSymbolicLink(offload.resolve("planted.dat"), canary);
        editMarker(m -> plant(m, field, "planted.dat", canary));
        forceRewrite();
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> load(checkpoint, offload, false)).isInstanceOf(OffloadFolderRefusedException.class)
                .hasMessageContaining("'planted.dat'").hasMessageContaining("symbolic link");
        assertThat(snapshot(root)).isEqualTo(before);
    }

    @Test
    void aMarkerListingAUserFileOfAnotherNameIsRefusedAndTheFileSurvives() throws IOException {
        load(checkpoint, offload, false);
        Path notes = Files.writeString(offload.resolve("notes.txt"), "mine");
        editMarker(m -> plant(m, "files", "notes.txt", notes));
        forceRewrite();
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> load(checkpoint, offload, false)).isInstanceOf(OffloadFolderRefusedException.class)
                .hasMessageContaining("'notes.txt'").hasMessageContaining("not a name Ferry gives its files");
        assertThat(snapshot(root)).isEqualTo(before);
    }

    @Test
    void aMarkerListingAFerryNameThatIsAFolderIsRefused() throws IOException {
        load(checkpoint, offload, false);
        Files.createDirectory(offload.resolve("sub.dat"));
        editMarker(m -> m.withArray("claimed").add("sub.dat"));
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> OffloadFolder.open(offload)).isInstanceOf(OffloadFolderRefusedException.class)
                .hasMessageContaining("'sub.dat'").hasMessageContaining("not a regular file");
        assertThat(snapshot(root)).isEqualTo(before);
    }

    private static void plant(ObjectNode marker, String field, String name, Path target) {
        if (field.equals("claimed")) {
            marker.withArray("claimed").add(name);
        } else {
            listAsWritten(marker, name, target);
        }
    }

    @Test
    void aRewriteRemovesFerrysOwnFilesItNoLongerNeeds() {
        TensorSpec spec = TensorSpec.of(DType.FLOAT32, 2);
        OffloadFolder.writer(offload).put("a", spec, ByteBuffer.allocate(8)).put("b", spec, ByteBuffer.allocate(8))
                .commit().close();

        OffloadFolder.writer(offload).put("a", spec, ByteBuffer.allocate(8)).commit().close();

        assertThat(offload.resolve("a.dat")).isRegularFile();
        assertThat(offload.resolve("b.dat")).doesNotExist();
    }

    @Test
    void aDatTheMarkerListsButFerrysIndexDoesNotDescribeIsNotDeleted() throws IOException {
        load(checkpoint, offload, false);
        // a user's file of Ferry's naming pattern, listed with a forged record of its real size and time
        Path photo = Files.write(offload.resolve("photo.dat"), new byte[] {1, 2, 3});
        editMarker(m -> listAsWritten(m, "photo.dat", photo));
        forceRewrite();
        String before = snapshot(root).get("offload/photo.dat");

        OffloadHarness.Loaded l = load(checkpoint, offload, false);

        assertThat(l.reused()).isFalse();
        assertThat(l.output()).containsExactly(expected);
        assertThat(snapshot(root).get("offload/photo.dat")).isEqualTo(before);
    }

    @Test
    void aLeftoverClaimedWithAnotherSizeIsNotDeleted() throws IOException {
        load(checkpoint, offload, false);
        // an unfinished write claimed extra.dat as a 4096-byte tensor; the file at that name is the user's, 4 bytes
        Path extra = Files.writeString(offload.resolve("extra.dat"), "mine");
        editMarker(m -> {
            m.put("state", "writing");
            m.withArray("claimed").add("extra.dat");
            m.with("claimed_sizes").put("extra.dat", 4096);
        });
        Map<String, String> before = snapshot(root);

        OffloadHarness.Loaded l = load(checkpoint, offload, false);

        assertThat(l.reused()).isFalse();
        assertThat(l.output()).containsExactly(expected);
        assertThat(snapshot(root).get("offload/extra.dat")).isEqualTo(before.get("offload/extra.dat"));
        assertThat(extra).hasContent("mine");
    }

    @Test
    void aLeftoverClaimedWithItsSizeIsRemoved() throws IOException {
        load(checkpoint, offload, false);
        Files.write(offload.resolve("extra.dat"), new byte[16]);
        editMarker(m -> {
            m.put("state", "writing");
            m.withArray("claimed").add("extra.dat");
            m.with("claimed_sizes").put("extra.dat", 16);
        });

        OffloadHarness.Loaded l = load(checkpoint, offload, false);

        assertThat(l.output()).containsExactly(expected);
        assertThat(offload.resolve("extra.dat")).doesNotExist();
    }

    // ---------------------------------------------------------------- where an index may point

    @Test
    void aMarkersCheckpointKeyDoesNotWidenWhereTheIndexMayPoint() throws IOException {
        Path elsewhere = Files.createDirectory(root.resolve("elsewhere"));
        Path secret = elsewhere.resolve("secret.safetensors");
        new SafetensorsWriter().add("s", TensorSpec.of(DType.FLOAT32, 2), ByteBuffer.allocate(8)).write(secret);
        OffloadFolder.writer(offload).put("w", TensorSpec.of(DType.FLOAT32, 1), ByteBuffer.allocate(4)).commit().close();
        Files.writeString(offload.resolve("index.json"), "{\"w\": {\"safetensors_file\": \""
                + secret.toRealPath() + "\", \"weight_name\": \"s\"}}");
        String secretPath = secret.toRealPath().toString();
        editMarker(m -> m.with("checkpoint").putObject(secretPath).put("size", 1).put("mtime_ns", 1)
                .put("header_sha256", "0"));

        assertThatThrownBy(() -> OffloadFolder.open(offload)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'w'").hasMessageContaining("outside the offload folder");
    }

    @Test
    void aDatThatBecameALinkToAFileOutsideIsRefusedOnReuse() throws IOException {
        load(checkpoint, offload, false);
        Path outside = Files.write(root.resolve("outside.bin"), new byte[(int) Files.size(offload.resolve(DAT))]);
        Files.delete(offload.resolve(DAT));
        Files.createSymbolicLink(offload.resolve(DAT), outside);
        // the marker no longer lists the file, so only the index names it
        editMarker(m -> m.with("files").remove(DAT));
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> OffloadFolder.open(offload)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'model.layers.3.attn.weight'").hasMessageContaining("symbolic link");
        assertThatThrownBy(() -> load(checkpoint, offload, false)).isInstanceOf(OffloadFolderRefusedException.class)
                .hasMessageContaining(DAT);
        assertThat(snapshot(root)).isEqualTo(before);
    }

    // ---------------------------------------------------------------- what the folder was made from

    @Test
    void aCheckpointRewrittenInPlaceWithItsTimeRestoredIsNotServedStale() throws IOException {
        load(checkpoint, offload, false);
        // another model of the same names, dtypes and shapes: same size, same header; written into the same inode
        byte[] other = Files.readAllBytes(OffloadHarness.saveBf16(root.resolve("other.safetensors"), 12));
        assertThat(other).hasSize((int) Files.size(checkpoint));
        FileTime time = Files.getLastModifiedTime(checkpoint);
        Object inode = Files.getAttribute(checkpoint, "unix:ino");
        try (FileChannel ch = FileChannel.open(checkpoint, StandardOpenOption.WRITE)) {
            AtomicFiles.writeFully(ch, ByteBuffer.wrap(other));
        }
        Files.setLastModifiedTime(checkpoint, time);
        assertThat(Files.getLastModifiedTime(checkpoint)).isEqualTo(time);
        assertThat(Files.getAttribute(checkpoint, "unix:ino")).isEqualTo(inode);
        float[] otherExpected = OffloadHarness.residentOutput(checkpoint);
        assertThat(otherExpected).isNotEqualTo(expected);

        OffloadHarness.Loaded l = load(checkpoint, offload, false);

        assertThat(l.reused()).isFalse();
        assertThat(l.output()).containsExactly(otherExpected);
    }

    // ---------------------------------------------------------------- files that are not regular

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFifoAtTheLockNameIsRefusedByNameWithoutHanging() throws Exception {
        Files.createDirectory(offload);
        mkfifo(offload.resolve(FolderLock.NAME));
        Map<String, String> before = snapshot(root);

        assertThatThrownBy(() -> load(checkpoint, offload, false)).isInstanceOf(OffloadFolderRefusedException.class)
                .hasMessageContaining(FolderLock.NAME).hasMessageContaining("not a regular file");
        assertThat(snapshot(root)).isEqualTo(before);
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aFifoAtADatNameIsRefusedByNameWithoutHanging() throws Exception {
        // an Accelerate folder (no marker): only its index names the file
        Files.createDirectory(offload);
        Files.writeString(offload.resolve("index.json"), "{\"w\": {\"dtype\": \"float32\", \"shape\": [1]}}");
        mkfifo(offload.resolve("w.dat"));

        assertThatThrownBy(() -> OffloadFolder.open(offload)).isInstanceOf(WeightsFormatException.class)
                .hasMessageContaining("tensor 'w'").hasMessageContaining("not a regular file");
    }

    static void mkfifo(Path at) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("mkfifo", at.toString()).redirectErrorStream(true).start();
        assumeThat(p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0).as("mkfifo works here").isTrue();
    }

    // ---------------------------------------------------------------- read-only folders

    @Test
    void aCompleteFolderThatCannotBeWrittenIsStillReused() throws IOException {
        // permission bits do not stop root, so this case needs an ordinary user
        assumeThat(System.getProperty("user.name")).as("not running as root").isNotEqualTo("root");
        load(checkpoint, offload, false);
        Path lock = offload.resolve(FolderLock.NAME);
        Files.setPosixFilePermissions(lock, PosixFilePermissions.fromString("r--r--r--"));
        Files.setPosixFilePermissions(offload, PosixFilePermissions.fromString("r-xr-xr-x"));
        try {
            Map<String, String> before = snapshot(root);
            OffloadHarness.Loaded l = load(checkpoint, offload, false);
            assertThat(l.reused()).isTrue();
            assertThat(l.output()).containsExactly(expected);
            assertThat(snapshot(root)).isEqualTo(before);

            forceRewrite();
            assertThatThrownBy(() -> load(checkpoint, offload, false)).isInstanceOf(OffloadFolderRefusedException.class)
                    .hasMessageContaining("cannot be written").hasMessageContaining("another checkpoint");
        } finally {
            Files.setPosixFilePermissions(offload, PosixFilePermissions.fromString("rwxr-xr-x"));
            Files.setPosixFilePermissions(lock, PosixFilePermissions.fromString("rw-r--r--"));
        }
    }
}
