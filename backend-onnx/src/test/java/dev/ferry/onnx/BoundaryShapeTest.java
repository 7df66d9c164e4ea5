package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Values crossing a cut keep the shape information that exists, and none is invented. */
class BoundaryShapeTest {

    static ValueInfoProto typed(String name, long... dims) {
        TypeProto.Tensor.Builder t = TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.UINT8_VALUE);
        if (dims != null) {
            TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
            for (long d : dims) {
                s.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(d));
            }
            t.setShape(s);
        }
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(t)).build();
    }

    @Test
    void aTypeWithoutShapeStaysShapelessWhenOrtKnowsNoMore() {
        ValueInfoProto declared = typed("x_quantized", (long[]) null);
        ValueInfoProto ortSaysNothing = typed("x_quantized", (long[]) null);

        ValueInfoProto v = SubModel.boundaryType(declared, ortSaysNothing);

        assertThat(v.getType().getTensorType().hasShape()).isFalse();
    }

    @Test
    void ortsShapeFillsInWhereTheExportHasNone() {
        ValueInfoProto v = SubModel.boundaryType(typed("x", (long[]) null), typed("x", 2, 11, 384));

        assertThat(v.getType().getTensorType().getShape().getDimList()).extracting(TensorShapeProto.Dimension::getDimValue)
                .containsExactly(2L, 11L, 384L);
    }

    @Test
    void theExportsOwnShapeWins() {
        ValueInfoProto v = SubModel.boundaryType(typed("x", 1, 4), typed("x", 7));

        assertThat(v.getType().getTensorType().getShape().getDimCount()).isEqualTo(2);
    }

    @Test
    void aDeviceMapKeyNamingAModuleWithoutOpsIsAcceptedAndReported() {
        OnnxModuleTree tree = OnnxModuleTree.build(OnnxModel.load(TestModels.fixture("tiny-gpt2", "model.onnx")));
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("transformer.wte", Device.cpu());
        map.put("transformer.wpe", Device.cpu());
        map.put("transformer.drop", Device.cpu()); // GPT2LMHeadModel's Dropout: no op in the export
        map.put("transformer.h", Device.cpu());
        map.put("transformer.ln_f", Device.cpu());
        map.put("lm_head", Device.cpu());

        DispatchPlan plan = OnnxDispatchedModel.plan(tree, DeviceMap.of(map), PreloadRule.none());

        assertThat(plan.keysWithoutModules()).containsExactly("transformer.drop");
        assertThat(plan.report().toTable()).contains("device map keys without ops in the model (accepted, nothing "
                + "to place): [transformer.drop]");
    }
}
