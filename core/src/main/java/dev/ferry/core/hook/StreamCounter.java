package dev.ferry.core.hook;

import java.util.ArrayList;
import java.util.List;

/**
 * Counts what offload hooks bring to the execution device: every streamed byte, and of those the bytes of routed
 * experts (fetched only when a router selects them), with the experts fetched in order. Shared by the hooks of one
 * dispatch; the benchmark and tests divide by the tokens they ran. Safe for concurrent use.
 */
public final class StreamCounter {

    /** Counts since creation or the last {@link #reset}. */
    public record Snapshot(long streamedBytes, long routedExpertBytes, long expertFetches, List<String> fetchedExperts) {
        public Snapshot {
            fetchedExperts = List.copyOf(fetchedExperts);
        }
    }

    /** Experts kept by name in {@link Snapshot#fetchedExperts} at most (the counts go on). */
    static final int NAMES_KEPT = 4096;

    private long streamedBytes;
    private long routedBytes;
    private long expertFetches;
    private final List<String> fetched = new ArrayList<>();

    /** A unit's tensors were brought to the execution device: {@code bytes} of them, routed or not. */
    public synchronized void streamed(String unit, long bytes, boolean routedExpert) {
        streamedBytes += bytes;
        if (routedExpert) {
            routedBytes += bytes;
            expertFetches++;
            if (fetched.size() < NAMES_KEPT) {
                fetched.add(unit);
            }
        }
    }

    public synchronized Snapshot snapshot() {
        return new Snapshot(streamedBytes, routedBytes, expertFetches, fetched);
    }

    public synchronized void reset() {
        streamedBytes = 0;
        routedBytes = 0;
        expertFetches = 0;
        fetched.clear();
    }
}
