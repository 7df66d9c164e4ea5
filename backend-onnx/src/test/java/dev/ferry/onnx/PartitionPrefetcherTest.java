package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.hook.Prefetcher;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** Offloaded partitions prepared ahead by the core's block prefetcher: which, how many, who closes them. */
class PartitionPrefetcherTest {

    /** A prepared partition that records its closing. */
    static final class Made implements AutoCloseable {
        final int position;
        boolean closed;

        Made(int position) {
            this.position = position;
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    final List<Made> made = new CopyOnWriteArrayList<>();

    List<Supplier<Made>> partitions(int n) {
        List<Supplier<Made>> order = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int position = i;
            order.add(() -> {
                Made m = new Made(position);
                made.add(m);
                return m;
            });
        }
        return order;
    }

    /** The core's prefetcher as {@link OnnxDispatchedModel} makes it: partitions registered in run order. */
    static Prefetcher<Made> prefetcher(List<Supplier<Made>> order, int ahead) {
        Prefetcher<Made> p = new Prefetcher<>(ahead, Made::close);
        order.forEach(p::register);
        return p;
    }

    @Test
    void takingAPartitionPreparesTheNextOneAndServesItWhenItsTurnComes() {
        try (Prefetcher<Made> p = prefetcher(partitions(4), 1)) {
            assertThat(p.take(0)).isNull(); // nothing ahead of the first run's first partition: the run makes it
            p.settle();
            assertThat(made).extracting(m -> m.position).containsExactly(1);

            Made second = p.take(1);

            assertThat(second).isSameAs(made.get(0));
            assertThat(p.hits()).isEqualTo(1);
            assertThat(p.misses()).isEqualTo(1);
        }
    }

    @Test
    void theLastPartitionPreparesTheFirstForTheNextRun() {
        try (Prefetcher<Made> p = prefetcher(partitions(3), 1)) {
            p.take(2);
            p.settle();
            assertThat(made).extracting(m -> m.position).containsExactly(0);
        }
    }

    @Test
    void neverMorePreparedAndUntakenThanTheOptionSays() {
        try (Prefetcher<Made> p = prefetcher(partitions(5), 2)) {
            for (int run = 0; run < 3; run++) {
                for (int i = 0; i < 5; i++) {
                    Made m = p.take(i);
                    assertThat(p.prepared()).isLessThanOrEqualTo(2);
                    if (m != null) {
                        m.close();
                    }
                }
            }
            p.settle();
            assertThat(p.prepared()).isEqualTo(2);
            assertThat(made).filteredOn(m -> !m.closed).hasSize(2);
            assertThat(p.misses()).isEqualTo(1);
            assertThat(p.hits()).isEqualTo(14);
        }
    }

    @Test
    void closingClosesWhatWasPreparedAndNeverTaken() {
        Prefetcher<Made> p = prefetcher(partitions(3), 2);
        p.take(0);

        p.close();

        assertThat(made).hasSize(2).allMatch(m -> m.closed);
        assertThat(p.prepared()).isZero();
    }

    @Test
    void aSinglePartitionIsNeverPreparedAhead() {
        try (Prefetcher<Made> p = prefetcher(partitions(1), 1)) {
            assertThat(p.take(0)).isNull();
            assertThat(p.take(0)).isNull();
            assertThat(p.prepared()).isZero();
            assertThat(made).isEmpty();
        }
    }

    @Test
    void aFailedPreparationIsThrownWhenItsPartitionIsTaken() {
        List<Supplier<Made>> order = new ArrayList<>(partitions(2));
        order.set(1, () -> {
            throw new OnnxModelException.RuntimeFailure("ONNX Runtime refused partition #1", null);
        });
        try (Prefetcher<Made> p = prefetcher(order, 1)) {
            p.take(0);
            assertThatThrownBy(() -> p.take(1)).isInstanceOf(OnnxModelException.RuntimeFailure.class)
                    .hasMessage("ONNX Runtime refused partition #1");
        }
    }

    @Test
    void zeroPartitionsAheadIsNoPrefetcher() {
        assertThatThrownBy(() -> prefetcher(partitions(2), 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at least 1");
    }

    @Test
    void theOptionDefaultsToOneAheadAndZeroTurnsItOff() {
        assertThat(OnnxOptions.defaults().prefetchPartitions()).isEqualTo(1);
        assertThat(OnnxOptions.defaults().withPrefetchPartitions(0).prefetchPartitions()).isZero();
        assertThatThrownBy(() -> OnnxOptions.defaults().withPrefetchPartitions(-1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0 (off) or more");
    }
}
