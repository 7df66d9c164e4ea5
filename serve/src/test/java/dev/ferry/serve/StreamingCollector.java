package dev.ferry.serve;

import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** What a LangChain4j streaming chat model hands its handler: the partial texts in order, then the whole response. */
final class StreamingCollector implements StreamingChatResponseHandler {

    final StringBuilder partial = new StringBuilder();
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

    ChatResponse response() throws Exception {
        return done.get(60, TimeUnit.SECONDS);
    }
}
