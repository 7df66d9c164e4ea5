package dev.ferry.serve;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.Fixtures;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import org.junit.jupiter.api.Test;

/**
 * {@code POST /v1/embeddings} on an encoder: tiny-bert's ONNX export served on ONNX Runtime gives transformers'
 * mean-pooled embeddings ({@code golden.json}), as floats and as base64.
 */
class EncoderEmbeddingsTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void anOnnxEncoderServesTransformersMeanPooledEmbeddings() throws Exception {
        JsonNode golden = JSON.readTree(Fixtures.model("tiny-bert").resolve("golden.json").toFile());
        JsonNode ids = golden.get("input_ids");
        JsonNode mask = golden.get("attention_mask");
        StringBuilder input = new StringBuilder("[");
        for (int r = 0; r < ids.size(); r++) {
            input.append(r == 0 ? "[" : ", [");
            int n = 0;
            for (int k = 0; k < ids.get(r).size(); k++) {
                if (mask.get(r).get(k).asInt() == 1) {
                    input.append(n++ == 0 ? "" : ", ").append(ids.get(r).get(k).asLong());
                }
            }
            input.append("]");
        }
        input.append("]");
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-bert")).backend("onnx").load();
             FerryServer server = FerryServer.start(model, ServeOptions.defaults("bert", 0))) {
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            for (String format : new String[] {"float", "base64"}) {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(server.baseUri() + "/embeddings"))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"input\": " + input + ", \"encoding_format\": \""
                                + format + "\"}")).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
                JsonNode j = JSON.readTree(r.body());
                assertThat(j.get("data")).hasSize(ids.size());
                for (int row = 0; row < ids.size(); row++) {
                    float[] got = vector(j.get("data").get(row).get("embedding"));
                    JsonNode expected = golden.get("mean_pooled").get(row);
                    assertThat(got).hasSize(expected.size());
                    for (int k = 0; k < got.length; k++) {
                        assertThat(got[k]).as(format + " row " + row + " [" + k + "]")
                                .isCloseTo((float) expected.get(k).asDouble(), within(1e-5f));
                    }
                }
                int tokens = 0;
                for (JsonNode row : mask) {
                    for (JsonNode m : row) {
                        tokens += m.asInt();
                    }
                }
                assertThat(j.get("usage").get("prompt_tokens").asInt()).isEqualTo(tokens);
            }
        }
    }

    private static float[] vector(JsonNode embedding) {
        if (embedding.isTextual()) {
            ByteBuffer b = ByteBuffer.wrap(Base64.getDecoder().decode(embedding.asText())).order(ByteOrder.LITTLE_ENDIAN);
            float[] out = new float[b.remaining() / 4];
            for (int i = 0; i < out.length; i++) {
                out[i] = b.getFloat();
            }
            return out;
        }
        float[] out = new float[embedding.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) embedding.get(i).asDouble();
        }
        return out;
    }
}
