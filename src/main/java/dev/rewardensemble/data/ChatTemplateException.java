package dev.rewardensemble.data;

/**
 * A chat template refused a conversation ({@code raise_exception(...)} in the template, e.g. roles
 * out of order) or failed to render. The message names the template's file and says what the
 * template said.
 */
public final class ChatTemplateException extends IllegalArgumentException {
  private final String templateMessage;

  ChatTemplateException(String message, String templateMessage) {
    super(message);
    this.templateMessage = templateMessage;
  }

  /** What the template itself said (the argument of {@code raise_exception}), or the error. */
  public String templateMessage() {
    return templateMessage;
  }
}
