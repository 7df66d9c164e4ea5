package dev.ferry.onnx;

import dev.ferry.core.dispatch.DispatchReport;
import java.util.List;

/**
 * What the ONNX backend made of a plan: the core's dispatch report for the same tree, map and preload classes
 * ({@code null} when the core planner rejects the map, e.g. one leaving tensors unmapped, which the ONNX
 * backend tolerates), one line per partition, the number of partitions (each has one session: kept for a
 * resident partition, created per run for an offloaded one), and the sessions created so far.
 */
public record OnnxDispatchReport(DispatchReport core, List<PartitionReport> partitions, int sessionCount,
                                 int residentSessions, int sessionsCreated) {

    public OnnxDispatchReport {
        partitions = List.copyOf(partitions);
    }

    public long initializerBytes() {
        return partitions.stream().mapToLong(PartitionReport::initializerBytes).sum();
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        sb.append(sessionCount).append(" partitions / sessions (").append(residentSessions).append(" resident), ")
                .append(sessionsCreated).append(" sessions created so far\n");
        partitions.forEach(p -> sb.append(p).append('\n'));
        return sb.toString();
    }
}
