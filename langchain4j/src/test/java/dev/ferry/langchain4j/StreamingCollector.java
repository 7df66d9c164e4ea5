package dev.ferry.langchain4j;

import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * What a LangChain4j streaming chat model hands its handler: the partial texts in order, then the whole response. Also
 * used by ferry-serve's tests (this module's test jar).
 */
public final class StreamingCollector implements StreamingChatResponseHandler {

    public final StringBuilder partial = new StringBuilder();
    private final CompletableFuture<ChatResponse> done = new CompletableFuture<>();

    @Override
    public void onPartialResponse(String text) {
        partial.append(text);
    }

    @Override
    public void onCompleteResponse(ChatResponse response) {
        done.complete(response);
    }

    @Override
    public void onError(Throwable error) {
        done.completeExceptionally(error);
    }

    /** The whole response, once it came (at most a minute). */
    public ChatResponse response() throws Exception {
        return done.get(60, TimeUnit.SECONDS);
    }
}
