package dev.ferry.pytorch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.testing.Fixtures;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** A fixture's {@code golden.json}: prompt ids, logits [8 × 256], greedy tokens. */
record Golden(long[] inputIds, float[][] logits, long[] greedy) {

    static Golden of(String model) {
        return of(model, null);
    }

    /** The golden of {@code section} of golden.json (tiny-phi3-longrope's {@code long_prompt}), or the top when null. */
    static Golden of(String model, String section) {
        Path file = Fixtures.model(model).resolve("golden.json");
        try {
            JsonNode j = new ObjectMapper().readTree(file.toFile());
            if (section != null) {
                j = j.get(section);
            }
            long[] ids = longs(j.get("input_ids"));
            int rows = j.get("logits_shape").get(0).asInt();
            int cols = j.get("logits_shape").get(1).asInt();
            JsonNode flat = j.get("logits");
            float[][] logits = new float[rows][cols];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    JsonNode v = flat.isArray() && flat.get(0).isArray() ? flat.get(r).get(c) : flat.get(r * cols + c);
                    logits[r][c] = (float) v.asDouble();
                }
            }
            return new Golden(ids, logits, longs(j.get("greedy_new_tokens")));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static long[] longs(JsonNode a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asLong();
        }
        return out;
    }

    /** Largest absolute difference to the golden logits. */
    double maxAbsDiff(float[][] actual) {
        double max = 0;
        for (int r = 0; r < logits.length; r++) {
            for (int c = 0; c < logits[r].length; c++) {
                max = Math.max(max, Math.abs(actual[r][c] - logits[r][c]));
            }
        }
        return max;
    }
}
