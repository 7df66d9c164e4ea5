package dev.ferry.core.weights;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import java.io.IOException;
import java.nio.file.Path;

/** The JSON settings shared by the weights formats: strict on read, Python's layout on write. */
final class Json {

    /** Rejects duplicate keys (safetensors forbids them) and anything after the top-level value. */
    static final ObjectMapper MAPPER = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** Compact, as serde_json writes a safetensors header. */
    static final ObjectWriter COMPACT = MAPPER.writer();

    /** The layout of Python's {@code json.dump(obj, f, indent=2)}, as Accelerate writes {@code index.json}. */
    static final ObjectWriter PYTHON_INDENT_2;

    static {
        DefaultIndenter indenter = new DefaultIndenter("  ", "\n");
        Separators separators = Separators.createDefaultInstance()
                .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                .withObjectEmptySeparator("")
                .withArrayEmptySeparator("");
        DefaultPrettyPrinter printer = new DefaultPrettyPrinter()
                .withObjectIndenter(indenter)
                .withArrayIndenter(indenter)
                .withSeparators(separators);
        PYTHON_INDENT_2 = MAPPER.writer(printer);
    }

    private Json() {
    }

    /** Parses a whole JSON file; a syntax error becomes a {@link WeightsFormatException} naming the file. */
    static JsonNode readFile(Path file, String what) {
        String why = dev.ferry.core.io.RegularFiles.problem(file);
        if (why != null && java.nio.file.Files.exists(file)) {
            throw new WeightsFormatException(file, null, what + " " + why);
        }
        try {
            return MAPPER.readTree(file.toFile());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new WeightsFormatException(file, null, what + " is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("cannot read " + file, e);
        }
    }
}
