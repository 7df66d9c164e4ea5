package dev.ferry.onnx;

import dev.ferry.core.dispatch.DispatchReport;
import java.util.List;
import java.util.Objects;

/**
 * What the ONNX backend made of a plan: the core's dispatch report it carries out (never {@code null}: a map
 * the core rejects is never dispatched), one line per partition, the number of partitions (each has one
 * session: kept for a resident partition, created per run for an offloaded one), the sessions created so far,
 * the prefetch of offloaded partitions and the ONNX Runtime objects made and closed.
 */
public record OnnxDispatchReport(DispatchReport core, List<PartitionReport> partitions, int sessionCount,
                                 int residentSessions, int sessionsCreated, Prefetch prefetch,
                                 OrtObjects ortObjects) {

    /**
     * Offloaded partitions prepared ahead of the run.
     *
     * @param partitionsAhead the option ({@link OnnxOptions#prefetchPartitions}); 0 when off
     * @param prepared        sessions prepared ahead and not yet used (at most {@code partitionsAhead}; after a
     *                        run, those of the next run's first offloaded partitions)
     * @param hits            offloaded partitions that ran on a session prepared ahead
     * @param misses          offloaded partitions that prepared their session when they ran
     */
    public record Prefetch(int partitionsAhead, int prepared, long hits, long misses) {
    }

    /**
     * ONNX Runtime objects this model made and closed so far: sessions (open: the resident ones and offloaded
     * ones prepared ahead), the weight tensors supplied to them, and run results (open: held by intermediate
     * values or by {@link OnnxRunResult}s the caller has not closed). None open once the model and its results
     * are closed.
     */
    public record OrtObjects(Count sessions, Count weightTensors, Count results) {

        /** Made and closed so far. */
        public record Count(long made, long closed) {
            public long open() {
                return made - closed;
            }
        }

        public boolean noneOpen() {
            return sessions.open() == 0 && weightTensors.open() == 0 && results.open() == 0;
        }
    }

    public OnnxDispatchReport {
        Objects.requireNonNull(core, "core");
        Objects.requireNonNull(prefetch, "prefetch");
        Objects.requireNonNull(ortObjects, "ortObjects");
        partitions = List.copyOf(partitions);
    }

    public long initializerBytes() {
        return partitions.stream().mapToLong(PartitionReport::initializerBytes).sum();
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        sb.append(sessionCount).append(" partitions / sessions (").append(residentSessions).append(" resident), ")
                .append(sessionsCreated).append(" sessions created so far; prefetch ")
                .append(prefetch.partitionsAhead()).append(" ahead: ").append(prefetch.hits()).append(" hits, ")
                .append(prefetch.misses()).append(" misses, ").append(prefetch.prepared()).append(" prepared; open: ")
                .append(ortObjects.sessions().open()).append(" sessions, ").append(ortObjects.weightTensors().open())
                .append(" weight tensors, ").append(ortObjects.results().open()).append(" results\n");
        partitions.forEach(p -> sb.append(p).append('\n'));
        return sb.toString();
    }
}
