package dev.ferry.langchain4j;

import dev.ferry.core.chat.ToolCalls;
import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.langchain4j.model.ModelProvider;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * LangChain4j's {@link StreamingChatModel} over a Ferry {@link DispatchedModel}, in process: text arrives in
 * {@code onPartialResponse} as the model produces it (never a broken UTF-8 character, never part of a stop
 * sequence), then {@code onCompleteResponse} with the whole reply, its usage and finish reason. Generation runs on a
 * thread of this object, so {@code chat} returns at once, as LangChain4j's remote streaming models do. Built with
 * {@link FerryChatModel.Builder#buildStreaming()}.
 */
public final class FerryStreamingChatModel implements StreamingChatModel, AutoCloseable {

    private final DispatchedModel model;
    private final GenerationConfig defaults;
    private final String modelName;
    private final ExecutorService threads = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "ferry-langchain4j-stream");
        t.setDaemon(true);
        return t;
    });

    FerryStreamingChatModel(DispatchedModel model, GenerationConfig defaults, String modelName) {
        this.model = Objects.requireNonNull(model, "model");
        this.defaults = defaults;
        this.modelName = modelName;
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        List<Map<String, Object>> tools = Conversions.tools(request);
        ToolCalls.Format form = Conversions.toolCallForm(tools, model);
        GenerationConfig config = Conversions.config(request.parameters(), defaults);
        threads.execute(() -> {
            try {
                // with tools, text that may be a call is held: calls come whole in the response, not as text
                ToolCalls.Stream calls = form == null ? null : new ToolCalls.Stream(form);
                Completion c = model.chat(Conversions.messages(request.messages()), tools, config, (token, delta) -> {
                    if (delta == null || delta.isEmpty()) {
                        return;
                    }
                    String text = calls == null ? delta : calls.release(delta);
                    if (!text.isEmpty()) {
                        handler.onPartialResponse(text);
                    }
                }, null);
                ChatResponse response = Conversions.response(c, modelName, form);
                if (calls != null && !calls.held().isEmpty() && !response.aiMessage().hasToolExecutionRequests()) {
                    handler.onPartialResponse(calls.held()); // held for nothing: it was text after all
                }
                handler.onCompleteResponse(response);
            } catch (RuntimeException e) {
                handler.onError(e);
            }
        });
    }

    @Override
    public ModelProvider provider() {
        return ModelProvider.OTHER;
    }

    /** Stops its threads (the model stays open: it is the caller's). */
    @Override
    public void close() {
        threads.shutdown();
    }
}
