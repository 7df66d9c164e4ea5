package dev.ferry.onnx;

import dev.ferry.core.tensor.Device;

/**
 * One partition as dispatched and run so far.
 *
 * @param executionProvider    the provider instance its sessions run on
 * @param nodeCount            ops of the original graph in this partition
 * @param initializerBytes     bytes of the initializers it reads
 * @param firstSessionMillis   creation of its first session (including graph optimisation)
 * @param lastSessionMillis    creation of its latest session (offloaded: from the cached optimised graph)
 * @param sessionsCreated      sessions created so far (1 for a resident partition; 1 + runs when offloaded)
 */
public record PartitionReport(int index, String label, String block, Device storage, Device execution,
                              boolean offloaded, ExecutionProvider executionProvider, int nodeCount,
                              int initializerCount, long initializerBytes, double firstSessionMillis,
                              double lastSessionMillis, int sessionsCreated) {

    @Override
    public String toString() {
        return String.format("#%d %-32s %-26s %-6s %-5s %4d nodes %3d inits %10d B  session %.1f ms (last %.1f ms, %d made)",
                index, label, executionProvider, offloaded ? storage + "→" : "", execution, nodeCount,
                initializerCount, initializerBytes, firstSessionMillis, lastSessionMillis, sessionsCreated);
    }
}
