package dev.ferry.core.chat;

/**
 * A chat template could not be rendered: it raised an exception itself ({@code raise_exception("...")}, a template's
 * way of refusing a conversation it does not support) or it is not valid Jinja. The message names which.
 */
public final class ChatTemplateException extends IllegalArgumentException {

    public ChatTemplateException(String message) {
        super(message);
    }

    public ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
