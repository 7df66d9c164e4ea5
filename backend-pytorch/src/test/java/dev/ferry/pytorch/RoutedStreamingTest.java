package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.hook.Hooks;
import dev.ferry.core.hook.ModelHook;
import dev.ferry.core.hook.StreamCounter;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Routed-expert streaming, counted: with every layer's experts on disk, a forward fetches exactly the experts its
 * router selected, each once however many tokens chose it, and nothing else crosses.
 */
class RoutedStreamingTest {

    static final Device CPU = Device.cpu();
    static final String FIXTURE = "tiny-mixtral";

    DjlBackend backend;
    SafetensorsCheckpoint ckpt;
    CausalLM model;
    CheckpointDispatcher.Result result;
    final StreamCounter counter = new StreamCounter();
    /** Per layer, the expert indices its router chose in the forwards recorded, in order. */
    final Map<String, List<long[]>> choices = new LinkedHashMap<>();

    /** Records what a router returns: its second output is the chosen experts {@code [tokens, k]}. */
    final class Recorder implements ModelHook {
        @Override
        public Object postForward(Module module, Object output) {
            DjlTensor indices = (DjlTensor) ((List<?>) output).get(1);
            String layer = module.name().substring(0, module.name().length() - ".mlp.gate".length());
            choices.computeIfAbsent(layer, k -> new ArrayList<>()).add(indices.array().toLongArray());
            return output;
        }
    }

    @BeforeEach
    void dispatch() {
        backend = new DjlBackend();
        Path dir = Fixtures.model(FIXTURE);
        ckpt = SafetensorsCheckpoint.open(dir);
        model = ModelFamilies.build(dir, backend);
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("", CPU);
        for (int l = 0; l < 4; l++) {
            m.put("model.layers." + l + ".mlp.experts", Device.disk());
        }
        DeviceMap map = DeviceMap.of(m);
        result = new CheckpointDispatcher(backend, new Dispatcher(backend)).loadAndDispatch(model, ckpt,
                CheckpointDispatcher.Options.of(map).withDispatch(DispatchOptions.of(map)
                        .withPreloadClasses(Set.of("MixtralDecoderLayer")).withStreamCounter(counter)));
        for (int l = 0; l < 4; l++) {
            Hooks.add(model.find("model.layers." + l + ".mlp.gate"), new Recorder(), true);
        }
    }

    @AfterEach
    void close() {
        Dispatcher.remove(model);
        result.close();
        ckpt.close();
        backend.close();
    }

    /** The experts each layer's router chose in the recorded forwards, as the names the hooks fetch them by. */
    List<String> routedExperts() {
        List<String> out = new ArrayList<>();
        choices.forEach((layer, forwards) -> {
            for (long[] chosen : forwards) {
                TreeSet<Long> distinct = new TreeSet<>();
                for (long e : chosen) {
                    distinct.add(e);
                }
                distinct.forEach(e -> out.add(layer + ".mlp.experts." + e));
            }
        });
        return out;
    }

    long bytesOf(List<String> experts) {
        return experts.stream().mapToLong(e -> model.find(e).byteSize()).sum();
    }

    @Test
    void aDecodeStepFetchesOnlyTheExpertsItsTokenWasRoutedTo() {
        Golden golden = Golden.of(FIXTURE);
        StreamCounter.Snapshot[] step = new StreamCounter.Snapshot[1];
        int[] seen = {0};
        long[] tokens = new Generator(model, backend, CPU).generate(golden.inputIds(), GenerationConfig.greedy(2), t -> {
            if (++seen[0] == 1) {
                counter.reset(); // prefill done: count the one decode step that follows
                choices.clear();
            } else {
                step[0] = counter.snapshot();
            }
        });

        assertThat(tokens).containsExactly(golden.greedy()[0], golden.greedy()[1]);
        List<String> routed = routedExperts();
        assertThat(routed).hasSize(4 * 2); // 4 layers, top-2, one token
        assertThat(step[0].fetchedExperts()).containsExactlyElementsOf(routed);
        assertThat(step[0].expertFetches()).isEqualTo(8);
        long expert = 3L * 64 * 96 * 4;
        assertThat(step[0].routedExpertBytes()).isEqualTo(bytesOf(routed)).isEqualTo(8 * expert);
        assertThat(step[0].streamedBytes()).isEqualTo(step[0].routedExpertBytes());
        System.out.printf("decode step: %d experts fetched, %d bytes streamed (of %d bytes of experts on disk)%n",
                step[0].expertFetches(), step[0].streamedBytes(), result.diskOffloadBytes());
    }

    @Test
    void aPrefillFetchesTheUnionOfItsTokensExpertsEachOnce() {
        Golden golden = Golden.of(FIXTURE);
        counter.reset();
        StreamCounter.Snapshot[] prefill = new StreamCounter.Snapshot[1];
        new Generator(model, backend, CPU).generate(golden.inputIds(), GenerationConfig.greedy(1),
                t -> prefill[0] = counter.snapshot());

        List<String> union = routedExperts();
        assertThat(prefill[0].fetchedExperts()).containsExactlyElementsOf(union).doesNotHaveDuplicates();
        assertThat(prefill[0].routedExpertBytes()).isEqualTo(bytesOf(union));
        // eight tokens chose 16 (expert, token) pairs per layer; each chosen expert crossed once
        assertThat(choices.values()).allSatisfy(forwards -> assertThat(forwards.get(0)).hasSize(8 * 2));
    }
}
