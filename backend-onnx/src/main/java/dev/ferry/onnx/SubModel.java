package dev.ferry.onnx;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.TensorInfo;
import java.util.Map;
import java.util.Set;

/**
 * Writes a partition back as an ONNX model for ONNX Runtime. Initializers the caller supplies at session
 * creation ({@code SessionOptions.addInitializer}) are written as weightless placeholders: shape and type,
 * marked external with a location that is never read, so the model bytes stay small however large the block;
 * they are declared graph inputs too, which keeps ORT's constant folding away from them. The others are
 * copied in whole.
 */
final class SubModel {

    /** External location of placeholders; ORT never opens it because every placeholder is supplied. */
    static final String SUPPLIED = "ferry-supplied-at-session-creation";

    private SubModel() {
    }

    static ModelProto build(OnnxModel model, Partition p, Map<String, ValueInfoProto> knownTypes,
                            Set<String> supplied) {
        GraphProto.Builder g = GraphProto.newBuilder().setName("ferry_" + p.index() + "_" + p.label()
                .replaceAll("[^A-Za-z0-9_]", "_"));
        for (int i : p.nodes()) {
            g.addNode(model.node(i));
        }
        for (String init : p.initializers()) {
            TensorProto t = model.initializer(init);
            if (supplied.contains(init)) {
                g.addInitializer(TensorProto.newBuilder().setName(init).setDataType(t.getDataType())
                        .addAllDims(t.getDimsList()).setDataLocation(TensorProto.DataLocation.EXTERNAL)
                        .addExternalData(entry("location", SUPPLIED))
                        .addExternalData(entry("offset", "0"))
                        .addExternalData(entry("length", Long.toString(model.byteSize(init)))));
            } else {
                g.addInitializer(t);
            }
        }
        for (String init : supplied) {
            // also a graph input: ORT then treats it as overridable, so no optimiser folds it (folding would
            // read the placeholder, and bake weights into the cached optimised graph)
            TensorProto t = model.initializer(init);
            TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
            t.getDimsList().forEach(d -> shape.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(d)));
            g.addInput(ValueInfoProto.newBuilder().setName(init).setType(TypeProto.newBuilder().setTensorType(
                    TypeProto.Tensor.newBuilder().setElemType(t.getDataType()).setShape(shape))));
        }
        for (String in : p.inputs()) {
            ValueInfoProto v = boundaryType(model.valueInfo(in), knownTypes.get(in));
            if (v == null) {
                throw new OnnxModelException("partition " + p.label() + ": no type known for input '" + in + "'");
            }
            g.addInput(v);
        }
        for (String out : p.outputs()) {
            ValueInfoProto v = model.valueInfo(out);
            g.addOutput(v != null && v.hasType() ? v : ValueInfoProto.newBuilder().setName(out).build());
        }
        for (int i : p.nodes()) {
            for (String o : model.node(i).getOutputList()) {
                ValueInfoProto v = model.valueInfo(o);
                if (v != null && v.hasType() && !p.outputs().contains(o)) {
                    g.addValueInfo(v);
                }
            }
        }
        ModelProto src = model.proto();
        return ModelProto.newBuilder()
                .setIrVersion(src.getIrVersion())
                .addAllOpsetImport(src.getOpsetImportList())
                .addAllFunctions(src.getFunctionsList())
                .setProducerName("ferry")
                .setProducerVersion(src.getProducerName() + " " + src.getProducerVersion())
                .setGraph(g)
                .build();
    }

    private static StringStringEntryProto entry(String k, String v) {
        return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
    }

    /**
     * The declaration of a value crossing a cut, keeping whatever shape information exists and inventing none: the
     * export's own {@code value_info} when it has a shape, else what ONNX Runtime reported for the producing
     * partition when that has one, else a type without a shape (unknown rank, as the export said).
     */
    static ValueInfoProto boundaryType(ValueInfoProto declared, ValueInfoProto fromOrt) {
        boolean declaredTyped = declared != null && declared.hasType();
        if (declaredTyped && declared.getType().getTensorType().hasShape()) {
            return declared;
        }
        if (fromOrt != null && fromOrt.getType().getTensorType().hasShape()) {
            return fromOrt;
        }
        return declaredTyped ? declared : fromOrt;
    }

    /**
     * A graph input declaration from what ONNX Runtime reported for a producer's output: known sizes as values,
     * symbolic ones by name, unknown ones empty. ORT reports an unknown rank as an empty shape, the same as a
     * scalar's; that is written without a shape (a scalar stays valid, a tensor is never declared rank 0). The
     * export's own {@code value_info}, where it has a shape, is preferred by {@link #boundaryType}.
     */
    static ValueInfoProto fromOrt(String name, NodeInfo info) {
        if (!(info.getInfo() instanceof TensorInfo t)) {
            throw new OnnxModelException("value '" + name + "' crossing partitions is " + info.getInfo()
                    + "; only tensors can cross");
        }
        TypeProto.Tensor.Builder tensor = TypeProto.Tensor.newBuilder().setElemType(onnxCode(t.onnxType));
        long[] dims = t.getShape();
        if (dims.length > 0) {
            String[] names = t.getDimensionNames();
            TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
            for (int i = 0; i < dims.length; i++) {
                TensorShapeProto.Dimension.Builder d = TensorShapeProto.Dimension.newBuilder();
                if (dims[i] >= 0) {
                    d.setDimValue(dims[i]);
                } else if (names != null && i < names.length && names[i] != null && !names[i].isEmpty()) {
                    d.setDimParam(names[i]);
                }
                shape.addDim(d);
            }
            tensor.setShape(shape);
        }
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(tensor))
                .build();
    }

    /** ORT Java numbers its element types its own way ({@code FLOAT} is 10 there, 1 in ONNX): map by name. */
    static int onnxCode(TensorInfo.OnnxTensorType t) {
        String name = t.name().substring("ONNX_TENSOR_ELEMENT_DATA_TYPE_".length());
        return TensorProto.DataType.valueOf(name).getNumber();
    }
}
