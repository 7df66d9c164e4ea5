package dev.ferry.langchain4j;

import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.text.TextTokenizer;
import dev.langchain4j.data.embedding.Embedding;
import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.output.Response;
import dev.langchain4j.model.output.TokenUsage;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * LangChain4j's {@link EmbeddingModel} over a Ferry {@link DispatchedModel}, in process: each text through the model
 * folder's tokenizer, then {@link DispatchedModel#embed} (mean-pooled final hidden states: a causal LM on PyTorch, an
 * encoder export on ONNX), all segments in one call.
 */
public final class FerryEmbeddingModel implements EmbeddingModel {

    private final DispatchedModel model;
    private final String modelName;

    public FerryEmbeddingModel(DispatchedModel model, String modelName) {
        this.model = Objects.requireNonNull(model, "model");
        this.modelName = modelName;
    }

    @Override
    public Response<List<Embedding>> embedAll(List<TextSegment> segments) {
        TextTokenizer tokenizer = model.text().requireTokenizer();
        long[][] ids = new long[segments.size()][];
        int tokens = 0;
        for (int i = 0; i < ids.length; i++) {
            ids[i] = tokenizer.encode(segments.get(i).text(), true);
            tokens += ids[i].length;
        }
        float[][] vectors = model.embed(ids);
        List<Embedding> out = new ArrayList<>(vectors.length);
        for (float[] v : vectors) {
            out.add(Embedding.from(v));
        }
        return Response.from(out, new TokenUsage(tokens));
    }

    @Override
    public String modelName() {
        return modelName;
    }

    @Override
    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }
}
