package dev.ferry.core.chat;

/** The model folder has no chat template, so messages cannot be turned into a prompt. */
public final class NoChatTemplateException extends IllegalStateException {

    public NoChatTemplateException(String message) {
        super(message);
    }
}
