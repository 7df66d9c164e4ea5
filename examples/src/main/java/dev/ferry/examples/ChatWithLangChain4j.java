package dev.ferry.examples;

import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.langchain4j.FerryChatModel;
import dev.ferry.langchain4j.FerryStreamingChatModel;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;

/**
 * A model dispatched by Ferry, used through LangChain4j in process ({@code ferry-langchain4j}): a chat reply, then the
 * same question streamed token by token. Any LangChain4j code that takes a {@code ChatModel} or
 * {@code StreamingChatModel} (AI services, chains, memory) can take these.
 *
 * <p>Run: {@code java -cp examples/target/ferry.jar dev.ferry.examples.ChatWithLangChain4j MODEL_DIR [QUESTION]}, with
 * a folder that has a chat template (chat_template.jinja or tokenizer_config.json's chat_template).
 */
public final class ChatWithLangChain4j {

    private ChatWithLangChain4j() {
    }

    /** The reply to {@code question}, printed whole and then streamed; returns the whole reply. */
    public static String run(Path modelDir, String question) throws Exception {
        try (DispatchedModel model = Ferry.model(modelDir).load();
             FerryStreamingChatModel streaming = FerryChatModel.builder().model(model).maxNewTokens(32)
                     .buildStreaming()) {
            ChatModel chat = FerryChatModel.builder().model(model).maxNewTokens(32).build();
            ChatResponse reply = chat.chat(SystemMessage.from("You are terse."), UserMessage.from(question));
            System.out.println("reply: " + reply.aiMessage().text() + " (" + reply.tokenUsage() + ")");

            CompletableFuture<ChatResponse> done = new CompletableFuture<>();
            System.out.print("streamed: ");
            streaming.chat(java.util.List.of(SystemMessage.from("You are terse."), UserMessage.from(question)),
                    new StreamingChatResponseHandler() {
                        @Override
                        public void onPartialResponse(String text) {
                            System.out.print(text);
                        }

                        @Override
                        public void onCompleteResponse(ChatResponse response) {
                            System.out.println();
                            done.complete(response);
                        }

                        @Override
                        public void onError(Throwable error) {
                            done.completeExceptionally(error);
                        }
                    });
            done.get();
            return reply.aiMessage().text();
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: ChatWithLangChain4j MODEL_DIR [QUESTION]");
            System.exit(2);
        }
        run(Path.of(args[0]), args.length > 1 ? args[1] : "Hi");
    }
}
