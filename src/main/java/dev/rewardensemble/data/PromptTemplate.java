package dev.rewardensemble.data;

import java.util.Locale;

/**
 * How an instruction (and optional input) becomes the prompt text a reward model reads.
 *
 * <p>The reward model scores <em>prompt tokens followed by response tokens</em>: the prompt
 * produced here and the response are tokenized separately and the two id sequences are
 * concatenated, with no separator in between, then an EOS id is appended when the {@link Encoder}
 * is configured with one. So the reward text is {@code tokens(prompt(instruction, input)) +
 * tokens(response) [+ eos]}. Tokenizing separately keeps the prompt/response boundary exact (a BPE
 * merge never straddles it), which is what lets the encoder cut the prompt while keeping the
 * response.
 */
public enum PromptTemplate {
  /**
   * The Alpaca / AlpacaFarm format (the default). With a non-empty input:
   *
   * <pre>
   * Below is an instruction that describes a task, paired with an input that provides further
   * context. Write a response that appropriately completes the request.\n\n### Instruction:\n
   * {instruction}\n\n### Input:\n{input}\n\n### Response:
   * </pre>
   *
   * (one line in reality); without input the "paired with an input..." clause and the Input section
   * are left out. The prompt ends at {@code "### Response:"}; the response text follows as its own
   * token sequence.
   */
  ALPACA {
    @Override
    public String prompt(String instruction, String input) {
      String in = input == null ? "" : input;
      if (in.isEmpty()) {
        return "Below is an instruction that describes a task. Write a response that appropriately"
            + " completes the request.\n\n### Instruction:\n"
            + instruction
            + "\n\n### Response:";
      }
      return "Below is an instruction that describes a task, paired with an input that provides"
          + " further context. Write a response that appropriately completes the request.\n\n"
          + "### Instruction:\n"
          + instruction
          + "\n\n### Input:\n"
          + in
          + "\n\n### Response:";
    }
  },

  /**
   * The prompt is used verbatim: {@code prompt(p, "")} is {@code p}. A non-empty input is appended
   * after a blank line ({@code p + "\n\n" + input}).
   */
  RAW {
    @Override
    public String prompt(String instruction, String input) {
      String in = input == null ? "" : input;
      return in.isEmpty() ? instruction : instruction + "\n\n" + in;
    }
  },

  /**
   * The tokenizer's chat template ({@link ChatTemplate}): a prompt and response become the
   * conversation {@code [{"role": "user", "content": prompt}, {"role": "assistant", "content":
   * response}]}, rendered and tokenized whole (no EOS appended: the template ends its turns
   * itself); a prompt alone is rendered with the generation prompt. {@link #prompt} gives the user
   * message's content, formatted as {@link #RAW}. Conversational rows (message lists) always use
   * the chat template, whatever the template setting.
   */
  CHAT {
    @Override
    public String prompt(String instruction, String input) {
      return RAW.prompt(instruction, input);
    }
  };

  /** The default template. */
  public static final PromptTemplate DEFAULT = ALPACA;

  /**
   * Builds the prompt text.
   *
   * @param instruction the instruction (for {@link #RAW}: the whole prompt)
   * @param input optional input; {@code null} or empty means none
   */
  public abstract String prompt(String instruction, String input);

  /**
   * The template of a name, case-insensitive ({@code "alpaca"}, {@code "raw"}, {@code "chat"}).
   *
   * @throws IllegalArgumentException for an unknown name, listing the known ones
   */
  public static PromptTemplate byName(String name) {
    if (name != null) {
      for (PromptTemplate t : values()) {
        if (t.name().equals(name.trim().toUpperCase(Locale.ROOT))) {
          return t;
        }
      }
    }
    throw new IllegalArgumentException(
        "unknown prompt template '" + name + "' (known: alpaca, raw, chat)");
  }

  /** The lower-case name accepted by {@link #byName}. */
  public String displayName() {
    return name().toLowerCase(Locale.ROOT);
  }
}
