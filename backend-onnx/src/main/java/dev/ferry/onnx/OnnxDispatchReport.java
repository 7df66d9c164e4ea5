package dev.ferry.onnx;

import dev.ferry.core.dispatch.DispatchReport;
import java.util.List;
import java.util.Objects;

/**
 * What the ONNX backend made of a plan: the core's dispatch report it carries out (never {@code null}: a map
 * the core rejects is never dispatched), one line per partition, the number of partitions (each has one
 * session: kept for a resident partition, created per run for an offloaded one), and the sessions created so
 * far.
 */
public record OnnxDispatchReport(DispatchReport core, List<PartitionReport> partitions, int sessionCount,
                                 int residentSessions, int sessionsCreated) {

    public OnnxDispatchReport {
        Objects.requireNonNull(core, "core");
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
