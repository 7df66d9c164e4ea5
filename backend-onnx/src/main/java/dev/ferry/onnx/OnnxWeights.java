package dev.ferry.onnx;

import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.WeightsStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where an ONNX model's offloaded partitions read their initializers, as a core {@link WeightsStore} keyed by
 * initializer name: first an offload store, if one is given, then the memory-mapped model.onnx and its
 * external-data files. The offload store may be keyed by initializer name (a folder Ferry wrote for this model)
 * or by the module tensor names the module tree maps to initializers (an Accelerate offload folder written from the
 * Hugging Face checkpoint: {@code encoder.layer.0.attention.self.query.weight}); a weight the exporter stored
 * transposed (a Linear folded into its transpose) is transposed back as it is read.
 */
public final class OnnxWeights implements WeightsStore {

    private record Alias(String name, boolean transposed) {
    }

    private final OnnxModel model;
    private final WeightsStore offload;
    private final Map<String, List<Alias>> aliases = new LinkedHashMap<>();
    private final Set<String> keys = new LinkedHashSet<>();

    /** {@code offload}: an offload store read first, or {@code null} for the model file alone. */
    public OnnxWeights(OnnxModuleTree tree, WeightsStore offload) {
        this.model = tree.model();
        this.offload = offload;
        tree.tensorSources().forEach((name, src) -> aliases.computeIfAbsent(src.initializer(), k -> new ArrayList<>())
                .add(new Alias(name, src.transposed())));
        for (String init : model.initializerNames()) {
            if (OnnxDataType.isKnown(model.initializer(init).getDataType()) && model.dataType(init).dtype() != null) {
                keys.add(init);
            }
        }
    }

    @Override
    public Set<String> keys() {
        return java.util.Collections.unmodifiableSet(keys);
    }

    @Override
    public TensorSpec spec(String initializer) {
        if (!keys.contains(initializer)) {
            throw new IllegalArgumentException("no initializer '" + initializer + "' with a tensor dtype in the model");
        }
        return model.spec(initializer);
    }

    /** Whether {@code initializer} is read from the offload store (else from the model file). */
    public boolean fromOffloadStore(String initializer) {
        return offload != null && (offload.contains(initializer) || alias(initializer) != null);
    }

    @Override
    public ByteBuffer bytes(String initializer) {
        TensorSpec spec = spec(initializer);
        if (offload != null) {
            if (offload.contains(initializer)) {
                return checked(initializer, spec, offload.spec(initializer), offload.bytes(initializer), false);
            }
            Alias a = alias(initializer);
            if (a != null) {
                return checked(initializer, spec, offload.spec(a.name()), offload.bytes(a.name()), a.transposed());
            }
        }
        return model.data(initializer);
    }

    private Alias alias(String initializer) {
        for (Alias a : aliases.getOrDefault(initializer, List.of())) {
            if (offload.contains(a.name())) {
                return a;
            }
        }
        return null;
    }

    private static ByteBuffer checked(String init, TensorSpec want, TensorSpec stored, ByteBuffer bytes,
                                      boolean transposed) {
        long[] shape = stored.shape();
        if (transposed) {
            shape = new long[] {shape[1], shape[0]};
        }
        if (stored.dtype() != want.dtype() || !Arrays.equals(shape, want.shape())) {
            throw new OnnxModelException("offloaded initializer '" + init + "' is " + want + " in the model but "
                    + stored + (transposed ? " (transposed)" : "") + " in the offload store");
        }
        return transposed ? transpose(bytes, (int) stored.shape()[0], (int) stored.shape()[1],
                stored.dtype().byteSize()) : bytes;
    }

    /** {@code rows × cols} elements of {@code size} bytes, row-major, into {@code cols × rows}. */
    static ByteBuffer transpose(ByteBuffer src, int rows, int cols, int size) {
        ByteBuffer in = src.duplicate();
        ByteBuffer out = ByteBuffer.allocateDirect(rows * cols * size).order(ByteOrder.LITTLE_ENDIAN);
        byte[] row = new byte[cols * size];
        int base = in.position();
        for (int r = 0; r < rows; r++) {
            in.get(base + r * cols * size, row);
            for (int c = 0; c < cols; c++) {
                out.put((c * rows + r) * size, row, c * size, size);
            }
        }
        return out.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public void close() {
        // the model and the offload store belong to whoever opened them
    }
}
