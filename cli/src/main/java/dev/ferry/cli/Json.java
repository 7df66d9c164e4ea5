package dev.ferry.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;

final class Json {

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private Json() {
    }

    /** {@code json} on one line. */
    static String compact(String json) {
        try {
            return MAPPER.writeValueAsString(MAPPER.readTree(json)).replace(",\"", ", \"").replace("\":", "\": ");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
