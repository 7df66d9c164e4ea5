package dev.ferry.langchain4j;

import dev.ferry.core.chat.ToolCalls;
import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * LangChain4j's {@link ChatModel} over a Ferry {@link DispatchedModel}, in process: the conversation goes through the
 * model's chat template ({@link DispatchedModel#chat}) and the reply comes back with its token usage and finish
 * reason. The model is the caller's (open it with {@code Ferry.model(dir)...load()}, close it when done); one model
 * may back several LangChain4j models and threads.
 *
 * <pre>{@code
 * ChatModel chat = FerryChatModel.builder().model(model).maxNewTokens(256).build();
 * String answer = chat.chat("Why is the sky blue?");
 * }</pre>
 */
public final class FerryChatModel implements ChatModel {

    private final DispatchedModel model;
    private final GenerationConfig defaults;
    private final String modelName;

    private FerryChatModel(Builder b) {
        this.model = Objects.requireNonNull(b.model, "model");
        this.defaults = b.defaults;
        this.modelName = b.modelName;
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        List<Map<String, Object>> tools = Conversions.tools(request);
        ToolCalls.Format form = Conversions.toolCallForm(tools, model);
        GenerationConfig config = Conversions.config(request.parameters(), defaults);
        Completion c = model.chat(Conversions.messages(request.messages()), tools, config, null, null);
        return Conversions.response(c, modelName, form);
    }

    @Override
    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }

    /** What a {@link FerryChatModel} or {@link FerryStreamingChatModel} runs, and its defaults. */
    public static final class Builder {
        DispatchedModel model;
        GenerationConfig defaults = GenerationConfig.builder().maxNewTokens(256).build();
        String modelName = "ferry";

        /** The dispatched model (required). */
        public Builder model(DispatchedModel model) {
            this.model = model;
            return this;
        }

        /** Generation when a request names nothing (default: greedy, 256 new tokens). */
        public Builder defaults(GenerationConfig config) {
            this.defaults = Objects.requireNonNull(config, "config");
            return this;
        }

        public Builder maxNewTokens(int n) {
            this.defaults = defaults.withMaxNewTokens(n);
            return this;
        }

        /** The name responses carry. */
        public Builder modelName(String name) {
            this.modelName = name;
            return this;
        }

        public FerryChatModel build() {
            return new FerryChatModel(this);
        }

        public FerryStreamingChatModel buildStreaming() {
            return new FerryStreamingChatModel(model, defaults, modelName);
        }
    }
}
