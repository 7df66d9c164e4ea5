package dev.ferry.examples.bench;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.SafetensorsWriter;
import dev.ferry.core.weights.WeightsStore;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A Llama-shaped Hugging Face model folder ({@code config.json} + {@code model.safetensors}) with random
 * weights, written tensor by tensor (never the whole model in memory) so benchmarks can use models of any
 * size without downloading one. Weights are uniform in ±0.02·√3 (std 0.02, as {@code initializer_range});
 * norm weights are 1, so activations stay finite through many layers.
 */
public final class SyntheticCheckpoint {

    /** The shape of a Llama model; {@link #parameterCount()} and {@link #bytes(DType)} say how big it is. */
    public record Shape(int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab) {

        public String configJson(DType dtype) {
            return String.format(Locale.ROOT, """
                    {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "dtype": "%s",
                     "hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": %d,
                     "num_attention_heads": %d, "num_key_value_heads": %d, "vocab_size": %d,
                     "head_dim": %d, "hidden_act": "silu", "max_position_embeddings": 2048,
                     "rms_norm_eps": 1e-05, "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
                     "attention_bias": false, "mlp_bias": false, "tie_word_embeddings": false,
                     "bos_token_id": 1, "eos_token_id": 2, "use_cache": true}
                    """, dtype.torchName(), hidden, intermediate, layers, heads, kvHeads, vocab, hidden / heads);
        }

        public long layerParameters() {
            long headDim = hidden / heads;
            long attn = 2L * hidden * hidden + 2L * hidden * kvHeads * headDim;
            return attn + 3L * hidden * intermediate + 2L * hidden;
        }

        public long parameterCount() {
            return layers * layerParameters() + 2L * vocab * hidden + hidden;
        }

        public long bytes(DType dtype) {
            return parameterCount() * dtype.byteSize();
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "llama hidden %d, intermediate %d, %d layers, %d/%d heads, vocab %d "
                    + "(%.1f M parameters)", hidden, intermediate, layers, heads, kvHeads, vocab, parameterCount() / 1e6);
        }
    }

    private SyntheticCheckpoint() {
    }

    /**
     * Writes {@code dir/config.json} and {@code dir/model.safetensors} for {@code shape}, weights stored as
     * {@code dtype} (float32, float16 or bfloat16); the same seed gives the same bytes.
     */
    public static Path write(Path dir, Shape shape, DType dtype, long seed) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("config.json"), shape.configJson(dtype));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        ModelConfig config = ModelConfig.read(dir);
        Map<String, TensorSpec> specs = new LinkedHashMap<>();
        try (DjlBackend backend = new DjlBackend()) {
            Module meta = ModelFamilies.build(config, backend, DType.FLOAT32);
            Set<TensorSlot> seen = Collections.newSetFromMap(new IdentityHashMap<>());
            meta.stateDict().forEach((name, slot) -> {
                if (seen.add(slot)) {
                    specs.put(name, slot.spec().withDType(dtype));
                }
            });
        }
        SafetensorsWriter w = new SafetensorsWriter();
        RandomStore store = new RandomStore(specs, seed);
        specs.keySet().forEach(k -> w.addFrom(store, k));
        Path file = dir.resolve(SafetensorsCheckpoint.SINGLE_FILE);
        w.write(file);
        return dir;
    }

    /** Generates each tensor's bytes when asked, so the writer streams them one at a time. */
    private static final class RandomStore implements WeightsStore {
        private final Map<String, TensorSpec> specs;
        private final long seed;

        RandomStore(Map<String, TensorSpec> specs, long seed) {
            this.specs = specs;
            this.seed = seed;
        }

        @Override
        public Set<String> keys() {
            return specs.keySet();
        }

        @Override
        public TensorSpec spec(String key) {
            return specs.get(key);
        }

        @Override
        public ByteBuffer bytes(String key) {
            TensorSpec spec = specs.get(key);
            int n = Math.toIntExact(spec.elementCount());
            ByteBuffer f32 = ByteBuffer.allocateDirect(n * 4).order(ByteOrder.LITTLE_ENDIAN);
            boolean norm = key.endsWith("norm.weight");
            long x = seed ^ key.hashCode() * 0x9E3779B97F4A7C15L;
            float scale = 0.02f * (float) Math.sqrt(3) / (1 << 23);
            for (int i = 0; i < n; i++) {
                if (norm) {
                    f32.putFloat(i * 4, 1f);
                    continue;
                }
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
                int r = (int) (x >>> 40) - (1 << 23); // 24 random bits, centred
                f32.putFloat(i * 4, r * scale);
            }
            if (spec.dtype() == DType.FLOAT32) {
                return f32;
            }
            return DTypeConversion.convert(f32, DType.FLOAT32, spec.dtype());
        }
    }
}
