package dev.ferry.onnx;

import dev.ferry.core.tensor.Device;
import java.util.List;

/**
 * One piece of a partitioned graph: the nodes of one unit of the plan (a block, a preloaded unit, or, in an
 * offloaded block without preload classes, one tensor-owning module), plus the unowned nodes the dataflow
 * placed with it. Partitions run in index order; every value a partition reads is a graph input, one of its
 * initializers or an output of an earlier partition.
 *
 * @param label       the unit's module path ({@code #2} appended when a unit was cut in several pieces)
 * @param block       the device-map key the unit belongs to ({@code null} for nodes outside every block)
 * @param storage     where the unit's initializers live between runs
 * @param execution   the device it runs on
 * @param offloaded   whether its session is created per run from stored initializers
 * @param nodes       node indices into the original graph, in topological order
 * @param inputs      values read from outside (graph inputs and earlier partitions' outputs)
 * @param outputs     values later partitions or the caller read
 * @param initializers initializers its nodes read
 */
public record Partition(int index, String label, String block, Device storage, Device execution, boolean offloaded,
                        List<Integer> nodes, List<String> inputs, List<String> outputs, List<String> initializers,
                        long initializerBytes) {

    public Partition {
        nodes = List.copyOf(nodes);
        inputs = List.copyOf(inputs);
        outputs = List.copyOf(outputs);
        initializers = List.copyOf(initializers);
    }

    @Override
    public String toString() {
        return "#" + index + " " + label + " (" + (offloaded ? storage + "→" : "") + execution + ", " + nodes.size()
                + " nodes, " + initializers.size() + " initializers, " + initializerBytes + " B, in " + inputs
                + ", out " + outputs + ")";
    }
}
