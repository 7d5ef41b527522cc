package dev.rewardensemble.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Turns (prompt, response) text or pre-tokenized ids into reward-model input ids of at most {@code
 * maxLength} tokens.
 *
 * <p>Text: ids = {@code tokens(template.prompt(...)) + tokens(response) [+ eos]} (see {@link
 * PromptTemplate}). When too long, {@link Truncation#ERROR} rejects it with both lengths; {@link
 * Truncation#LEFT} keeps the response (with its EOS) whole and cuts the prompt from the
 * <em>left</em>, so the tokens nearest the response survive. A response plus EOS that alone is
 * longer than {@code maxLength} is always an error (it is never cut, so its EOS is never lost).
 *
 * <p>Pre-tokenized ids ({@link #encodeIds}) are used as given (no EOS is appended); a sequence
 * longer than {@code maxLength} is an error or is cut from the left, per {@link Truncation}.
 *
 * <p>Every truncated sequence increments a counter ({@link #truncatedCount()}) for metrics. The
 * counter is thread-safe; the encoder is otherwise immutable.
 */
public final class Encoder {
  /** What the encoder does with a sequence longer than the maximum length. */
  public enum Truncation {
    /** Reject it with an {@link IllegalArgumentException}. */
    ERROR,
    /**
     * Keep its last {@code maxLength} ids (text: cut the prompt from the left, keep the response).
     */
    LEFT
  }

  private final Tokenizer tokenizer;
  private final PromptTemplate template;
  private final int maxLength;
  private final OptionalInt eosId;
  private final Truncation truncation;
  private final AtomicInteger truncated = new AtomicInteger();

  /**
   * @param tokenizer the tokenizer, or {@code null} when only pre-tokenized input will be encoded
   * @param template how prompts are formatted
   * @param maxLength maximum number of ids per sequence, at least 1
   * @param eosId id appended after the response of text input, if present
   * @param truncation policy for over-long input (text and pre-tokenized)
   */
  public Encoder(
      Tokenizer tokenizer,
      PromptTemplate template,
      int maxLength,
      OptionalInt eosId,
      Truncation truncation) {
    if (maxLength < 1) {
      throw new IllegalArgumentException("maxLength must be at least 1, got " + maxLength);
    }
    this.tokenizer = tokenizer;
    this.template = Objects.requireNonNull(template, "template");
    this.maxLength = maxLength;
    this.eosId = Objects.requireNonNull(eosId, "eosId");
    this.truncation = Objects.requireNonNull(truncation, "truncation");
    if (eosId.isPresent()) {
      int eos = eosId.getAsInt();
      if (eos < 0 || (tokenizer != null && eos >= tokenizer.vocabSize())) {
        throw new IllegalArgumentException("eos id " + eos + " outside the vocabulary");
      }
    }
  }

  /** An encoder with {@link Truncation#ERROR} for pre-tokenized input. */
  public Encoder(Tokenizer tokenizer, PromptTemplate template, int maxLength, OptionalInt eosId) {
    this(tokenizer, template, maxLength, eosId, Truncation.ERROR);
  }

  /** A new encoder with the same settings but another template (and its own counter at 0). */
  public Encoder withTemplate(PromptTemplate other) {
    return new Encoder(tokenizer, other, maxLength, eosId, truncation);
  }

  /**
   * Encodes a prompt and response: the prompt is formatted as {@code template.prompt(prompt, "")}
   * (verbatim for {@link PromptTemplate#RAW}).
   *
   * @throws IllegalStateException if this encoder has no tokenizer
   */
  public EncodedSequence encode(String prompt, String response) {
    return encode(prompt, "", response);
  }

  /**
   * Encodes an instruction with optional input (formatted by the template) and a response. With
   * {@link PromptTemplate#CHAT} they become a user and an assistant message rendered by the chat
   * template (an empty response: the user message alone, with the generation prompt).
   */
  public EncodedSequence encode(String instruction, String input, String response) {
    if (template == PromptTemplate.CHAT) {
      String user = template.prompt(instruction, input);
      return response.isEmpty()
          ? encodeChat(List.of(ChatMessage.of("user", user)), true)
          : encodeChat(
              List.of(ChatMessage.of("user", user), ChatMessage.of("assistant", response)), false);
    }
    return encodeFormatted(template.prompt(instruction, input), response);
  }

  /**
   * The chat template of this encoder's tokenizer.
   *
   * @throws IllegalArgumentException naming the tokenizer's file when it has none
   */
  public ChatTemplate chatTemplate() {
    if (tokenizer == null) {
      throw new IllegalArgumentException(
          "conversational rows need a tokenizer with a chat template, and none was given");
    }
    return tokenizer
        .chatTemplate()
        .orElseThrow(
            () ->
                new IllegalArgumentException(
                    "conversational rows need a chat template, and the tokenizer "
                        + tokenizer.file()
                        + " has none (no chat_template in the tokenizer_config.json beside it,"
                        + " no chat_template.jinja)"));
  }

  /**
   * Encodes a conversation with the tokenizer's chat template, as transformers' {@code
   * apply_chat_template(messages, add_generation_prompt=..., tokenize=True)} does: the rendered
   * text tokenized whole, no special tokens added and no EOS appended (the template writes its own
   * BOS and end-of-turn tokens).
   *
   * <p>Longer than the maximum length: {@link Truncation#ERROR} rejects it with its length; {@link
   * Truncation#LEFT} drops the oldest turns — whole messages, starting each candidate at a {@code
   * user} message and keeping a leading {@code system} message — and renders again, until it fits.
   * The last user turn and what follows it are never cut: when they alone are too long, it is an
   * error. Token ids are never cut out of a rendered conversation, so the template's structure
   * (BOS, system header, turn markers) stays intact.
   *
   * @return the ids; {@code promptLength} is the whole length for a generation prompt, else 0
   * @throws ChatTemplateException if the template refuses the conversation
   * @throws IllegalArgumentException if there is no chat template, or it is too long
   */
  public EncodedSequence encodeChat(List<ChatMessage> messages, boolean addGenerationPrompt) {
    ChatTemplate chat = chatTemplate();
    if (messages.isEmpty()) {
      throw new IllegalArgumentException("empty conversation");
    }
    int[] ids = chat.encode(tokenizer, messages, addGenerationPrompt);
    if (ids.length <= maxLength) {
      return new EncodedSequence(ids, addGenerationPrompt ? ids.length : 0, false);
    }
    if (truncation == Truncation.ERROR) {
      throw new IllegalArgumentException(
          "the conversation has "
              + ids.length
              + " tokens, more than the maximum length "
              + maxLength
              + " (--truncate left drops its oldest turns)");
    }
    int system = messages.get(0).role().equals("system") ? 1 : 0;
    int lastStart = -1;
    for (int start = system + 1; start < messages.size(); start++) {
      if (!messages.get(start).role().equals("user")) {
        continue;
      }
      lastStart = start;
      List<ChatMessage> kept = new ArrayList<>(messages.subList(0, system));
      kept.addAll(messages.subList(start, messages.size()));
      int[] cut = chat.encode(tokenizer, kept, addGenerationPrompt);
      if (cut.length <= maxLength) {
        truncated.incrementAndGet();
        return new EncodedSequence(cut, addGenerationPrompt ? cut.length : 0, true);
      }
      ids = cut;
    }
    throw new IllegalArgumentException(
        (lastStart < 0 ? "the conversation" : "its last turn (from message " + lastStart + ")")
            + " has "
            + ids.length
            + " tokens, more than the maximum length "
            + maxLength
            + " (a conversation is cut only at whole turns, and never in its last one)");
  }

  /**
   * Encodes already formatted prompt text (not passed through the template; may be empty) and a
   * response, with the same truncation policy as {@link #encode(String, String)}.
   */
  public EncodedSequence encodeFormatted(String promptText, String response) {
    if (tokenizer == null) {
      throw new IllegalStateException("text input needs a tokenizer; this encoder has none");
    }
    int[] p = promptText.isEmpty() ? new int[0] : tokenizer.encode(promptText);
    int[] r = tokenizer.encode(response);
    return join(p, r);
  }

  /**
   * Combines prompt and response ids (already tokenized) with the EOS and truncation policy of text
   * input.
   */
  public EncodedSequence join(int[] promptIds, int[] responseIds) {
    int eosLen = eosId.isPresent() ? 1 : 0;
    String eosNote = eosLen == 1 ? " (with its EOS)" : "";
    if (responseIds.length + eosLen > maxLength) {
      throw new IllegalArgumentException(
          "the response alone has "
              + (responseIds.length + eosLen)
              + " tokens"
              + eosNote
              + ", more than the maximum length "
              + maxLength
              + " (a response is never cut)");
    }
    if (promptIds.length + responseIds.length + eosLen > maxLength
        && truncation == Truncation.ERROR) {
      throw new IllegalArgumentException(
          promptIds.length
              + " prompt + "
              + (responseIds.length + eosLen)
              + " response tokens"
              + eosNote
              + " exceed the maximum length "
              + maxLength
              + " (--truncate left cuts the prompt from the left)");
    }
    int[] tail = Arrays.copyOf(responseIds, responseIds.length + eosLen);
    if (eosLen == 1) {
      tail[responseIds.length] = eosId.getAsInt();
    }
    if (promptIds.length + tail.length <= maxLength) {
      int[] ids = Arrays.copyOf(promptIds, promptIds.length + tail.length);
      System.arraycopy(tail, 0, ids, promptIds.length, tail.length);
      return new EncodedSequence(ids, promptIds.length, false);
    }
    truncated.incrementAndGet();
    int keep = maxLength - tail.length;
    int[] ids = new int[maxLength];
    System.arraycopy(promptIds, promptIds.length - keep, ids, 0, keep);
    System.arraycopy(tail, 0, ids, keep, tail.length);
    return new EncodedSequence(ids, keep, true);
  }

  /**
   * Checks pre-tokenized ids against the maximum length. No EOS is appended.
   *
   * @throws IllegalArgumentException if too long and the policy is {@link Truncation#ERROR}
   */
  public EncodedSequence encodeIds(int[] ids) {
    if (ids.length <= maxLength) {
      return new EncodedSequence(ids.clone(), 0, false);
    }
    if (truncation == Truncation.ERROR) {
      throw new IllegalArgumentException(
          ids.length + " tokens exceed the maximum length " + maxLength);
    }
    truncated.incrementAndGet();
    return new EncodedSequence(
        Arrays.copyOfRange(ids, ids.length - maxLength, ids.length), 0, true);
  }

  /** Number of sequences truncated so far by this encoder. */
  public int truncatedCount() {
    return truncated.get();
  }

  /** The tokenizer, or {@code null}. */
  public Tokenizer tokenizer() {
    return tokenizer;
  }

  /** Whether text input can be encoded. */
  public boolean hasTokenizer() {
    return tokenizer != null;
  }

  public PromptTemplate template() {
    return template;
  }

  public int maxLength() {
    return maxLength;
  }

  public OptionalInt eosId() {
    return eosId;
  }

  public Truncation truncation() {
    return truncation;
  }
}
