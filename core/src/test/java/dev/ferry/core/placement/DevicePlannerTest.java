package dev.ferry.core.placement;

import static dev.ferry.core.placement.TestModels.CPU;
import static dev.ferry.core.placement.TestModels.DISK;
import static dev.ferry.core.placement.TestModels.GPU0;
import static dev.ferry.core.placement.TestModels.GPU1;
import static dev.ferry.core.placement.TestModels.GPU2;
import static dev.ferry.core.placement.TestModels.buffer;
import static dev.ferry.core.placement.TestModels.linear;
import static dev.ferry.core.placement.TestModels.map;
import static dev.ferry.core.placement.TestModels.memory;
import static dev.ferry.core.placement.TestModels.modelForTest;
import static dev.ferry.core.placement.TestModels.ordered;
import static dev.ferry.core.placement.TestModels.sequential;
import static dev.ferry.core.placement.TestModels.tie;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.PlanRequest.Strategy;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Accelerate's test_infer_auto_device_map* and test_get_balanced_memory cases. Accelerate's
 * {@code infer_auto_device_map} alone is the sequential fill, so those cases run with {@link Strategy#SEQUENTIAL}.
 */
class DevicePlannerTest {

    private final DevicePlanner planner = new DevicePlanner();

    private Map<String, Device> fill(Module model, Map<Device, Long> budgets) {
        return planner.plan(model, PlanRequest.of(budgets).withStrategy(Strategy.SEQUENTIAL)).deviceMap().entries();
    }

    // ---- test_infer_auto_device_map ----------------------------------------------------------------------

    @Test
    void firstDeviceKeepsRoomForTheLargestLayer() {
        assertThat(fill(modelForTest(), memory(GPU0, 200, GPU1, 200)))
                .containsExactlyEntriesOf(map("linear1", GPU0, "batchnorm", GPU1, "linear2", GPU1));
    }

    @Test
    void otherDevicesKeepNoRoom() {
        assertThat(fill(modelForTest(), memory(GPU0, 200, GPU1, 172, GPU2, 200)))
                .containsExactlyEntriesOf(map("linear1", GPU0, "batchnorm", GPU1, "linear2", GPU1));
    }

    @Test
    void tiedWeightsCountOnceSoTheWholeModelFits() {
        Module model = modelForTest();
        tie(model, "linear1.weight", "linear2.weight");

        assertThat(fill(model, memory(GPU0, 200, GPU1, 200))).containsExactlyEntriesOf(map("", GPU0));
    }

    @Test
    void biggerModelIsSplitAtLayerLevel() {
        Module model = sequential(modelForTest(), modelForTest(), modelForTest());

        assertThat(fill(model, memory(GPU0, 500, GPU1, 500))).containsExactlyEntriesOf(
                map("0", GPU0, "1.linear1", GPU0, "1.batchnorm", GPU0, "1.linear2", GPU1, "2", GPU1));
    }

    @Test
    void noSplitClassIsPlacedWhole() {
        Module model = sequential(modelForTest(), modelForTest(), modelForTest());
        PlanRequest request = PlanRequest.of(memory(GPU0, 500, GPU1, 500)).withStrategy(Strategy.SEQUENTIAL)
                .withNoSplit("ModelForTest");

        assertThat(planner.plan(model, request).deviceMap().entries())
                .containsExactlyEntriesOf(map("0", GPU0, "1", GPU1, "2", GPU1));
    }

    // ---- test_infer_auto_device_map_with_tied_weights ------------------------------------------------------

    private static Module threeLayers() {
        return sequential(ordered("layer1", modelForTest(), "layer2", modelForTest(), "layer3", modelForTest()));
    }

    @Test
    void tiedBlockIsSplitSoItsTiedPartGoesWithTheFirstBlock() {
        Module model = threeLayers();
        tie(model, "layer3.linear2.weight", "layer1.linear2.weight");

        assertThat(fill(model, memory(GPU0, 400, GPU1, 500))).containsExactlyEntriesOf(map(
                "layer1", GPU0, "layer2", GPU1, "layer3.linear1", GPU1, "layer3.batchnorm", GPU1,
                "layer3.linear2", GPU0));
    }

    @Test
    void threeTiedWeightsLandTogether() {
        Module model = threeLayers();
        tie(model, "layer3.linear2.weight", "layer1.linear2.weight");
        tie(model, "layer2.linear2.weight", "layer1.linear2.weight");

        assertThat(fill(model, memory(GPU0, 400, GPU1, 500))).containsExactlyEntriesOf(map(
                "layer1", GPU0, "layer2.linear1", GPU1, "layer2.batchnorm", GPU1, "layer2.linear2", GPU0,
                "layer3.linear1", GPU1, "layer3.batchnorm", GPU1, "layer3.linear2", GPU0));
    }

    @Test
    void twoTiedGroupsLandWithTheirFirstBlock() {
        Module model = threeLayers();
        tie(model, "layer3.linear2.weight", "layer1.linear2.weight");
        tie(model, "layer2.linear2.weight", "layer1.linear2.weight");
        tie(model, "layer2.linear1.weight", "layer1.linear1.weight");

        assertThat(fill(model, memory(GPU0, 400, GPU1, 500))).containsExactlyEntriesOf(map(
                "layer1", GPU0, "layer2.linear1", GPU0, "layer2.batchnorm", GPU1, "layer2.linear2", GPU0,
                "layer3.linear1", GPU1, "layer3.batchnorm", GPU1, "layer3.linear2", GPU0));
    }

    @Test
    void modulesTiedByWeightAndBiasShareADevice() {
        Module model = sequential(ordered("linear1", linear(4, 4), "linear2", linear(6, 6),
                "linear3", linear(4, 4), "linear4", linear(6, 6)));
        tie(model, "linear3.weight", "linear1.weight");
        tie(model, "linear3.bias", "linear1.bias");

        assertThat(fill(model, memory(GPU0, 250, GPU1, 400))).containsExactlyEntriesOf(
                map("linear1", GPU0, "linear2", GPU1, "linear3", GPU0, "linear4", GPU1));
    }

    @Test
    void tieInsideAModuleOwningTensorsStaysInside() {
        // Accelerate's LinearModuleAndSubModule: compute.weight is also compute.weight_submodule.parameter
        Module compute = linear(3, 8);
        Module sub = compute.addChild("weight_submodule", new Module("SubModule"));
        sub.registerParameter("parameter", compute.tensor("weight"));
        Module model = new Module("Model");
        model.addChild("compute", compute);

        assertThat(fill(model, memory(GPU0, 4, CPU, 96_000))).containsExactlyEntriesOf(map("compute", CPU));
    }

    // ---- test_infer_auto_device_map_with_buffer_check(_and_multi_devices) ---------------------------------------

    private static Module modelWithBuffers() {
        Module model = modelForTest();
        buffer(model, "linear1", "test_buffer1", 10, 2);
        buffer(model, "batchnorm", "test_buffer2", 10, 3);
        buffer(model, "linear2", "test_buffer3", 10, 3);
        return model;
    }

    @Test
    void buffersCountTowardsBlockSizes() {
        DevicePlan plan = planner.plan(modelWithBuffers(), PlanRequest.of(memory(GPU0, 400, CPU, 1_000_000_000L)));

        assertThat(plan.deviceMap().entries())
                .containsExactlyEntriesOf(map("linear1", GPU0, "batchnorm", CPU, "linear2", CPU));
        assertThat(plan.bytesPerDevice()).containsExactly(Map.entry(GPU0, 144L), Map.entry(CPU, 192L + 220L));
    }

    @Test
    void offloadedBuffersThatFitNoAcceleratorAreWarnedAbout() {
        DevicePlan plan = planner.plan(modelWithBuffers(), PlanRequest.of(memory(GPU0, 400, CPU, 1_000_000_000L)));

        assertThat(plan.warnings()).singleElement().asString().contains("280 bytes").contains("offloadBuffers");
    }

    @Test
    void offloadingBuffersSilencesTheWarning() {
        DevicePlan plan = planner.plan(modelWithBuffers(),
                PlanRequest.of(memory(GPU0, 400, CPU, 1_000_000_000L)).withOffloadBuffers(true));

        assertThat(plan.warnings()).isEmpty();
        assertThat(plan.deviceMap().entries())
                .containsExactlyEntriesOf(map("linear1", GPU0, "batchnorm", CPU, "linear2", CPU));
    }

    private static Module modelWithBuffersAndLinear3() {
        Module model = modelWithBuffers();
        model.addChild("linear3", linear(4, 5));
        buffer(model, "linear3", "test_buffer4", 10, 2);
        return model;
    }

    @Test
    void offloadedBuffersFittingTheSecondAcceleratorAreFine() {
        DevicePlan plan = planner.plan(modelWithBuffersAndLinear3(), PlanRequest.of(
                memory(GPU0, 400, GPU1, 400, CPU, 1_000_000_000L)).withStrategy(Strategy.SEQUENTIAL));

        assertThat(plan.deviceMap().entries()).containsExactlyEntriesOf(
                map("linear1", GPU0, "batchnorm", GPU1, "linear2", CPU, "linear3", CPU));
        assertThat(plan.warnings()).isEmpty();
    }

    @Test
    void offloadedBuffersFittingNoAcceleratorAreWarnedAboutWithSeveral() {
        DevicePlan plan = planner.plan(modelWithBuffersAndLinear3(), PlanRequest.of(
                memory(GPU0, 400, GPU1, 200, CPU, 1_000_000_000L)).withStrategy(Strategy.SEQUENTIAL));

        assertThat(plan.deviceMap().entries()).containsExactlyEntriesOf(
                map("linear1", GPU0, "batchnorm", GPU1, "linear2", CPU, "linear3", CPU));
        assertThat(plan.warnings()).singleElement().asString().contains("200 bytes");
    }

    // ---- cpu, disk, budgets ---------------------------------------------------------------------------------

    private static Module fourBlocks() {
        return sequential(modelForTest(), modelForTest(), modelForTest(), modelForTest());
    }

    @Test
    void spillsToCpuThenDisk() {
        DevicePlan plan = planner.plan(fourBlocks(),
                PlanRequest.of(memory(GPU0, 500, CPU, 500)).withNoSplit("ModelForTest"));

        assertThat(plan.deviceMap().entries())
                .containsExactlyEntriesOf(map("0", GPU0, "1", CPU, "2", DISK, "3", DISK));
        assertThat(plan.bytesPerDevice()).containsExactly(Map.entry(GPU0, 236L), Map.entry(CPU, 236L),
                Map.entry(DISK, 472L));
        assertThat(plan.reservedBytes()).containsExactly(Map.entry(GPU0, 236L), Map.entry(CPU, 236L));
    }

    @Test
    void diskBudgetIsHonouredWhenGiven() {
        assertThatThrownBy(() -> planner.plan(fourBlocks(),
                PlanRequest.of(memory(GPU0, 500, CPU, 500, DISK, 300)).withNoSplit("ModelForTest")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'3' (ModelForTest")
                .hasMessageContaining("disk 300 B (used 236 B)");
    }

    @Test
    void noDiskAndFullCpuIsAnErrorNamingTheBlockItsSizeAndTheBudgets() {
        PlanRequest request = PlanRequest.of(memory(GPU0, 500, CPU, 500)).withNoSplit("ModelForTest").withDisk(false);

        assertThatThrownBy(() -> planner.plan(fourBlocks(), request))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'2' (ModelForTest, 236 B = 236 bytes)")
                .hasMessageContaining("no-split")
                .hasMessageContaining("gpu0 500 B (used 236 B, 236 B kept free")
                .hasMessageContaining("cpu 500 B (used 236 B")
                .hasMessageContaining("disk offload is off");
    }

    @Test
    void noSplitBlockBiggerThanEveryBudgetIsAnErrorWithoutDisk() {
        PlanRequest request = PlanRequest.of(memory(GPU0, 200, CPU, 200)).withNoSplit("ModelForTest").withDisk(false);

        assertThatThrownBy(() -> planner.plan(sequential(modelForTest(), modelForTest()), request))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'0' (ModelForTest, 236 B = 236 bytes)");
    }

    @Test
    void noBudgetAndNoDiskIsAnErrorSayingSo() {
        assertThatThrownBy(() -> planner.plan(modelForTest(), PlanRequest.of(Map.of()).withDisk(false)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("the whole model (ModelForTest, 236 B = 236 bytes)")
                .hasMessageContaining("maxMemory names no device");
    }

    @Test
    void noBudgetAtAllPutsEverythingOnDisk() {
        assertThat(planner.plan(modelForTest(), PlanRequest.of(Map.of())).deviceMap().entries())
                .containsExactlyEntriesOf(map("", DISK));
    }

    @Test
    void devicesAbsentFromTheBudgetsAreNotUsed() {
        DevicePlan plan = planner.plan(modelForTest(), PlanRequest.of(memory(GPU1, 1000)));

        assertThat(plan.deviceMap().entries()).containsExactlyEntriesOf(map("", GPU1));
        assertThat(plan.bytesPerDevice()).containsExactly(Map.entry(GPU1, 236L));
    }

    @Test
    void withoutAcceleratorsTheCpuIsTheMainDevice() {
        DevicePlan plan = planner.plan(modelForTest(), PlanRequest.of(memory(CPU, 200)));

        assertThat(plan.deviceMap().entries())
                .containsExactlyEntriesOf(map("linear1", CPU, "batchnorm", DISK, "linear2", DISK));
        assertThat(plan.reservedBytes()).containsExactly(Map.entry(CPU, 100L));
    }

    @Test
    void dtypeShrinksBlocksSoMoreFit() {
        PlanRequest request = PlanRequest.of(memory(GPU0, 200, GPU1, 200)).withStrategy(Strategy.SEQUENTIAL)
                .withDtype(DType.FLOAT16);

        assertThat(planner.plan(modelForTest(), request).deviceMap().entries())
                .containsExactlyEntriesOf(map("", GPU0));
    }

    @Test
    void unknownNoSplitClassIsWarnedAbout() {
        DevicePlan plan = planner.plan(modelForTest(),
                PlanRequest.of(memory(GPU0, 1000)).withNoSplit("LlamaDecoderLayer"));

        assertThat(plan.warnings()).containsExactly("no-split class 'LlamaDecoderLayer' matches no module of the model");
    }

    @Test
    void bytesPerDeviceSumToTheModelSize() {
        DevicePlan plan = planner.plan(threeLayers(), PlanRequest.of(memory(GPU0, 300, GPU1, 200, CPU, 100)));

        assertThat(plan.bytesPerDevice().values().stream().mapToLong(Long::longValue).sum())
                .isEqualTo(plan.totalBytes()).isEqualTo(708L);
    }

    @Test
    void planCoversEveryTensor() {
        DevicePlan plan = planner.plan(threeLayers(), PlanRequest.of(memory(GPU0, 300, GPU1, 200, CPU, 100)));

        DeviceMap resolved = plan.deviceMap().resolve(threeLayers());
        assertThat(resolved.entries()).isNotEmpty();
    }

    @Test
    void moduleOwningTensorsAndChildrenIsPlacedWhole() {
        Module model = new Module("Root");
        model.addChild("head", linear(4, 4));
        Module block = model.addChild("block", new Module("Block"));
        block.registerParameter("scale", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, 10)));
        block.addChild("a", linear(4, 4));
        block.addChild("b", linear(4, 4));
        model.addChild("tail", linear(2, 2));

        // split, block's children a and b would fit on gpu0; its own 'scale' could not be named in the map
        DevicePlan plan = planner.plan(model,
                PlanRequest.of(memory(GPU0, 300, GPU1, 1000)).withStrategy(Strategy.SEQUENTIAL));

        assertThat(plan.deviceMap().entries()).containsExactlyEntriesOf(map("head", GPU0, "block", GPU1, "tail", GPU1));
    }

    // ---- test_get_balanced_memory ---------------------------------------------------------------------------

    private static Map<Device, Long> balanced(Map<Device, Long> budgets) {
        return DevicePlanner.balancedMemory(modelForTest(), PlanRequest.of(budgets), false);
    }

    @Test
    void balancedKeepsBudgetsTooSmallToLower() {
        assertThat(balanced(memory(GPU0, 200, GPU1, 200))).isEqualTo(memory(GPU0, 200, GPU1, 200));
    }

    @Test
    void balancedWorksOnNonContiguousAccelerators() {
        assertThat(balanced(memory(GPU0, 200, GPU2, 200))).isEqualTo(memory(GPU0, 200, GPU2, 200));
    }

    @Test
    void balancedLowersAllButTheLastAccelerator() {
        assertThat(balanced(memory(GPU0, 300, GPU1, 300))).isEqualTo(memory(GPU0, 215, GPU1, 300));
    }

    @Test
    void lastAcceleratorKeepsItsWholeBudget() {
        assertThat(balanced(memory(GPU0, 300, GPU1, 500))).isEqualTo(memory(GPU0, 215, GPU1, 500));
    }

    @Test
    void singleAcceleratorWithCpuIsUnchanged() {
        assertThat(balanced(memory(GPU0, 300, CPU, 1000))).isEqualTo(memory(GPU0, 300, CPU, 1000));
    }

    @Test
    void zeroBudgetAcceleratorIsNotCounted() {
        assertThat(balanced(memory(GPU0, 0, GPU1, 300, GPU2, 300))).isEqualTo(memory(GPU0, 0, GPU1, 215, GPU2, 300));
    }

    @Test
    void zeroBudgetAcceleratorWithCpuIsUnchanged() {
        assertThat(balanced(memory(GPU0, 0, CPU, 100))).isEqualTo(memory(GPU0, 0, CPU, 100));
    }

    @Test
    void balancedMarginUsesTheFirstNoSplitBlock() {
        Module model = sequential(modelForTest(), modelForTest(), modelForTest());
        Map<Device, Long> budgets = DevicePlanner.balancedMemory(model,
                PlanRequest.of(memory(GPU0, 1000, GPU1, 1000)).withNoSplit("ModelForTest"), false);

        // 708 / 2 + 1.25 x 236
        assertThat(budgets).isEqualTo(memory(GPU0, 354 + 295, GPU1, 1000));
    }

    @Test
    void lowZeroLeavesTheFirstAcceleratorOnlyWhatTheOthersCannotHold() {
        Map<Device, Long> budgets = DevicePlanner.balancedMemory(modelForTest(),
                PlanRequest.of(memory(GPU0, 300, GPU1, 100, GPU2, 100)), true);

        // share 236 / 2 + 97 = 215 for gpu1; gpu0 keeps 236 - (100 + 100)
        assertThat(budgets).isEqualTo(memory(GPU0, 36, GPU1, 100, GPU2, 100));
    }

    // ---- strategies -----------------------------------------------------------------------------------------

    @Test
    void autoBalancesOverSeveralAccelerators() {
        DevicePlan plan = planner.plan(modelForTest(), PlanRequest.of(memory(GPU0, 300, GPU1, 300)));

        assertThat(plan.budgets()).isEqualTo(memory(GPU0, 215, GPU1, 300));
        assertThat(plan.deviceMap().entries())
                .containsExactlyEntriesOf(map("linear1", GPU0, "batchnorm", GPU1, "linear2", GPU1));
    }

    @Test
    void balancedIsAuto() {
        PlanRequest request = PlanRequest.of(memory(GPU0, 300, GPU1, 300));

        assertThat(planner.plan(modelForTest(), request.withStrategy(Strategy.BALANCED)))
                .isEqualTo(planner.plan(modelForTest(), request));
    }

    @Test
    void sequentialFillsTheFirstAcceleratorFirst() {
        DevicePlan plan = planner.plan(modelForTest(),
                PlanRequest.of(memory(GPU0, 300, GPU1, 300)).withStrategy(Strategy.SEQUENTIAL));

        assertThat(plan.deviceMap().entries()).containsExactlyEntriesOf(map("", GPU0));
    }

    @Test
    void balancedLowZeroKeepsTheFirstAcceleratorEmptyWhenTheOthersHoldTheModel() {
        DevicePlan plan = planner.plan(modelForTest(),
                PlanRequest.of(memory(GPU0, 300, GPU1, 300, GPU2, 300)).withStrategy(Strategy.BALANCED_LOW_0));

        assertThat(plan.budgets()).containsEntry(GPU0, 0L);
        assertThat(plan.deviceMap().entries()).doesNotContainValue(GPU0);
    }

    @Test
    void strategyNamesParseAsTransformersWritesThem() {
        assertThat(Strategy.parse("balanced_low_0")).isEqualTo(Strategy.BALANCED_LOW_0);
        assertThat(Strategy.parse("auto")).isEqualTo(Strategy.AUTO);
        assertThatThrownBy(() -> Strategy.parse("fastest")).hasMessageContaining("'fastest'");
    }

    @Test
    void maxMemoryParsesAccelerateForm() {
        assertThat(PlanRequest.parseMaxMemory(ordered("0", "10GiB", "cuda:1", 1000, "cpu", "30GB")))
                .isEqualTo(memory(GPU0, 10L << 30, GPU1, 1000L, CPU, 30_000_000_000L));
    }

    @Test
    void badMaxMemoryValueNamesTheDeviceAndTheValue() {
        assertThatThrownBy(() -> PlanRequest.parseMaxMemory(ordered("cpu", "lots")))
                .hasMessageContaining("'cpu'").hasMessageContaining("'lots'");
    }

    @Test
    void negativeBudgetIsRejected() {
        assertThatThrownBy(() -> PlanRequest.of(memory(GPU0, -1))).hasMessageContaining("gpu0");
    }
}
