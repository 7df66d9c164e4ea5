package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An initializer's external data {@code location} resolves inside the model's folder (after normalisation and
 * after following links) or the model is refused with a named error that echoes no byte of the foreign file.
 */
class ExternalDataConfinementTest {

    static final String SECRET = "root:x:0:0:SECRET-BYTES";

    @TempDir
    Path tmp;

    /** {@code dir/model.onnx}: one float[4] initializer {@code w} stored at {@code location}, and Identity(w). */
    static Path model(Path dir, String location, String offset) throws Exception {
        TensorProto.Builder w = TensorProto.newBuilder().setName("w").setDataType(TensorProto.DataType.FLOAT_VALUE)
                .addDims(4).setDataLocation(TensorProto.DataLocation.EXTERNAL)
                .addExternalData(entry("location", location)).addExternalData(entry("offset", offset))
                .addExternalData(entry("length", "16"));
        GraphProto g = GraphProto.newBuilder().setName("g").addInitializer(w)
                .addNode(NodeProto.newBuilder().setOpType("Identity").addInput("w").addOutput("y"))
                .addOutput(ValueInfoProto.newBuilder().setName("y")).build();
        ModelProto m = ModelProto.newBuilder().setIrVersion(8).setGraph(g)
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(18)).build();
        Files.createDirectories(dir);
        return Files.write(dir.resolve("model.onnx"), m.toByteArray());
    }

    static Path model(Path dir, String location) throws Exception {
        return model(dir, location, "0");
    }

    static StringStringEntryProto entry(String k, String v) {
        return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
    }

    static byte[] weights() {
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        b.putFloat(1).putFloat(2).putFloat(3).putFloat(4);
        return b.array();
    }

    /** A file outside the model folder that must never be read (longer than the 16 bytes asked for). */
    Path secret() throws Exception {
        return Files.writeString(tmp.resolve("secret.txt"), SECRET + "\n".repeat(40));
    }

    @Test
    void locationInsideTheFolderIsRead() throws Exception {
        Path dir = tmp.resolve("m");
        Path f = model(dir, "data/w.bin");
        Files.createDirectories(dir.resolve("data"));
        Files.write(dir.resolve("data/w.bin"), weights());
        assertThat(OnnxModel.load(f).data("w").getFloat(12)).isEqualTo(4f);
    }

    @Test
    void absoluteLocationIsRefused() throws Exception {
        Path secret = secret();
        Path f = model(tmp.resolve("m"), secret.toAbsolutePath().toString());
        assertThatThrownBy(() -> OnnxModel.load(f))
                .isInstanceOf(OnnxModelException.ExternalDataOutsideModel.class)
                .hasMessageContaining("initializer 'w'").hasMessageContaining("absolute path")
                .hasMessageContaining(tmp.resolve("m").toString())
                .hasMessageNotContaining("SECRET-BYTES");
    }

    @Test
    void etcPasswdIsRefused() throws Exception {
        Path f = model(tmp.resolve("m"), "/etc/passwd");
        assertThatThrownBy(() -> OnnxModel.load(f))
                .isInstanceOf(OnnxModelException.ExternalDataOutsideModel.class)
                .hasMessageContaining("/etc/passwd").hasMessageNotContaining("root:");
    }

    @Test
    void dotDotLocationIsRefused() throws Exception {
        secret();
        Path f = model(tmp.resolve("m"), "../secret.txt");
        assertThatThrownBy(() -> OnnxModel.load(f))
                .isInstanceOf(OnnxModelException.ExternalDataOutsideModel.class)
                .hasMessageContaining("'../secret.txt'").hasMessageContaining("leads out of the folder")
                .hasMessageNotContaining("SECRET-BYTES");
    }

    @Test
    void dotDotThatComesBackInsideIsRead() throws Exception {
        Path dir = tmp.resolve("m");
        Path f = model(dir, "data/../w.bin");
        Files.write(dir.resolve("w.bin"), weights());
        assertThat(OnnxModel.load(f).data("w").getFloat(0)).isEqualTo(1f);
    }

    @Test
    void linkToAFileOutsideTheFolderIsRefused() throws Exception {
        Path secret = secret();
        Path dir = tmp.resolve("m");
        Path f = model(dir, "w.bin");
        Files.createSymbolicLink(dir.resolve("w.bin"), secret);
        assertThatThrownBy(() -> OnnxModel.load(f))
                .isInstanceOf(OnnxModelException.ExternalDataOutsideModel.class)
                .hasMessageContaining("'w.bin'").hasMessageContaining("link to a file outside")
                .hasMessageNotContaining("SECRET-BYTES");
    }

    @Test
    void linkedFolderLeadingOutsideIsRefused() throws Exception {
        secret();
        Path dir = tmp.resolve("m");
        Path f = model(dir, "shared/secret.txt");
        Files.createSymbolicLink(dir.resolve("shared"), tmp);
        assertThatThrownBy(() -> OnnxModel.load(f))
                .isInstanceOf(OnnxModelException.ExternalDataOutsideModel.class)
                .hasMessageContaining("shared/secret.txt");
    }

    @Test
    void linkInsideTheFolderIsFollowed() throws Exception {
        Path dir = tmp.resolve("m");
        Path f = model(dir, "w.bin");
        Files.write(dir.resolve("real.bin"), weights());
        Files.createSymbolicLink(dir.resolve("w.bin"), dir.resolve("real.bin"));
        assertThat(OnnxModel.load(f).data("w").getFloat(4)).isEqualTo(2f);
    }

    @Test
    void modelLoadedThroughALinkedFolderStillReadsItsOwnData() throws Exception {
        Path dir = tmp.resolve("real");
        Path f = model(dir, "w.bin");
        Files.write(dir.resolve("w.bin"), weights());
        Path alias = Files.createSymbolicLink(tmp.resolve("alias"), dir);
        assertThat(OnnxModel.load(alias.resolve(f.getFileName())).data("w").getFloat(8)).isEqualTo(3f);
    }

    @Test
    void controlCharactersOfALocationAreEscapedInTheMessage() throws Exception {
        Path f = model(tmp.resolve("m"), "../\u001b[2Jevil");
        assertThatThrownBy(() -> OnnxModel.load(f))
                .isInstanceOf(OnnxModelException.ExternalDataOutsideModel.class)
                .hasMessageContaining("\\u001b[2Jevil").hasMessageNotContaining("\u001b");
    }

    @Test
    void offsetThatIsNotANumberIsNamedWithoutEchoingIt() throws Exception {
        Path dir = tmp.resolve("m");
        Files.createDirectories(dir);
        Files.write(dir.resolve("w.bin"), weights());
        Path f = model(dir, "w.bin", "SECRET-BYTES");
        assertThatThrownBy(() -> OnnxModel.load(f)).isInstanceOf(OnnxModelException.class)
                .hasMessageContaining("initializer 'w'").hasMessageContaining("offset")
                .hasMessageNotContaining("SECRET-BYTES");
    }

    @Test
    void outsideFileOfExactlyTheRightSizeIsStillRefused() throws Exception {
        // a file of zeros with the very length asked for: confinement is checked before, not instead of, sizes
        Path zeros = Files.write(tmp.resolve("zeros.bin"), new byte[16]);
        Path f = model(tmp.resolve("m"), "../" + zeros.getFileName());
        assertThatThrownBy(() -> OnnxModel.load(f))
                .isInstanceOf(OnnxModelException.ExternalDataOutsideModel.class).hasMessageContaining("zeros.bin");
    }
}
