package dev.ferry.examples;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.Fixtures;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code close()} from the main thread while four threads generate in a loop: close refuses new calls and waits for
 * the running ones, so every call ends with the golden tokens or the named 'the model is closed' error, and the JVM
 * lives (before, PyTorch freed the weights and KV caches under the running forwards: SIGSEGV).
 */
class CloseWhileGeneratingTest {

    @ParameterizedTest
    @ValueSource(strings = {"pytorch", "onnx"})
    void closeDrainsRunningGenerationsAndRefusesNewOnes(String backend) throws Exception {
        JsonNode golden = FerryBuilderTest.golden("tiny-llama");
        long[] prompt = FerryBuilderTest.longs(golden.get("input_ids"));
        long[] expected = FerryBuilderTest.longs(golden.get("greedy_new_tokens"));
        DispatchedModel model = Ferry.model(Fixtures.model("tiny-llama")).deviceMap(FerryBuilderTest.layer3OnDisk())
                .backend(backend).load();
        AtomicInteger golden4 = new AtomicInteger();
        AtomicInteger closedErrors = new AtomicInteger();
        ConcurrentLinkedQueue<Throwable> other = new ConcurrentLinkedQueue<>();
        ConcurrentLinkedQueue<long[]> wrong = new ConcurrentLinkedQueue<>();
        CountDownLatch warm = new CountDownLatch(8);
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            Thread thread = new Thread(() -> {
                while (true) {
                    try {
                        long[] out = model.generate(prompt, GenerationConfig.greedy(8));
                        if (java.util.Arrays.equals(out, expected)) {
                            golden4.incrementAndGet();
                        } else {
                            wrong.add(out);
                        }
                        warm.countDown();
                    } catch (IllegalStateException e) {
                        if (String.valueOf(e.getMessage()).contains("model is closed")) {
                            closedErrors.incrementAndGet();
                        } else {
                            other.add(e);
                        }
                        return;
                    } catch (Throwable e) {
                        other.add(e);
                        return;
                    }
                }
            }, "generate-" + t);
            thread.start();
            threads.add(thread);
        }
        assertThat(warm.await(60, TimeUnit.SECONDS)).as("eight generations before close").isTrue();

        model.close();
        int goldenAtClose = golden4.get();
        for (Thread thread : threads) {
            thread.join(60_000);
            assertThat(thread.isAlive()).as(thread.getName() + " ended").isFalse();
        }

        assertThat(other).as("errors other than 'the model is closed'").isEmpty();
        assertThat(wrong).as("non-golden results").isEmpty();
        assertThat(closedErrors.get()).as("every thread ends on the closed error").isEqualTo(4);
        assertThat(golden4.get()).isGreaterThanOrEqualTo(8).isLessThanOrEqualTo(goldenAtClose + 4);
        model.close(); // idempotent
    }
}
