package dev.rewardensemble.eval;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * A small, fully programmatic world for reproducing RLHF offline: prompts a program can judge
 * ({@link Task}), split into training and held-out sets ({@link TaskSets}), a gold judge standing
 * in for humans ({@link GoldJudge}), imperfect demonstrations with a shortcut ({@link
 * Demonstrations}), and the character vocabulary every model of the world uses ({@link
 * CharVocabulary}).
 *
 * <p>Token layout of a policy sequence: {@code <s> prompt-chars response-chars </s>}; the prompt is
 * {@code <s>} plus the instruction's characters ({@link #promptIds}), the response is everything
 * after it up to and including EOS. Everything is deterministic in the seed.
 *
 * @param seed decides the train/eval split and the demonstrations
 * @param tasks the prompt sets
 * @param demonstrations how demonstrations are drawn
 */
public record World(long seed, TaskSets tasks, Demonstrations demonstrations) {

  /** Held-out prompts per task kind (CAPITAL: every fact, see {@link TaskSets}). */
  public static final int EVAL_PER_KIND = 40;

  /** A world with the default split and demonstrations. */
  public static World create(long seed) {
    return new World(seed, TaskSets.split(seed, EVAL_PER_KIND), Demonstrations.defaults());
  }

  /** The same world with other demonstration rates. */
  public World withDemonstrations(Demonstrations d) {
    return new World(seed, tasks, d);
  }

  /** The gold judge (stateless). */
  public GoldJudge judge() {
    return new GoldJudge();
  }

  /** {@code n} demonstrations over the training prompts, deterministic in the world's seed. */
  public List<Demonstrations.Demonstration> demonstrations(int n) {
    return demonstrations.generate(tasks, n, seed * 7919 + 17);
  }

  /** Number of token ids. */
  public int vocabSize() {
    return CharVocabulary.SIZE;
  }

  /** {@code <s>} followed by the instruction's characters. */
  public static int[] promptIds(String instruction) {
    int[] chars = CharVocabulary.encode(instruction);
    int[] out = new int[chars.length + 1];
    out[0] = CharVocabulary.BOS;
    System.arraycopy(chars, 0, out, 1, chars.length);
    return out;
  }

  /** A whole training sequence: {@code <s> instruction response </s>}. */
  public static int[] sequence(String instruction, String response) {
    int[] p = promptIds(instruction);
    int[] r = CharVocabulary.encode(response);
    int[] out = Arrays.copyOf(p, p.length + r.length + 1);
    System.arraycopy(r, 0, out, p.length, r.length);
    out[out.length - 1] = CharVocabulary.EOS;
    return out;
  }

  /** Response text of generated ids (stops at EOS). */
  public static String responseText(int[] responseIds) {
    return CharVocabulary.decode(responseIds);
  }

  /** Writes the world's {@code tokenizer.json} (see {@link CharVocabulary#writeTokenizerJson}). */
  public static void writeTokenizer(Path file) throws IOException {
    CharVocabulary.writeTokenizerJson(file);
  }
}
