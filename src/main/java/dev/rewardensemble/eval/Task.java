package dev.rewardensemble.eval;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One prompt of the world and its correct answer. The instruction is the whole prompt text (the
 * policy reads {@code <s>} followed by its characters); it always ends with {@code '?'}, so a
 * response appended to it without a separator (the {@code raw} prompt template) stays readable.
 *
 * <pre>
 *   ADD      "add 23+45?"           -> "68"        a, b in [0, 49]
 *   SORT     "sort 3917?"           -> "1379"      3 or 4 digits, ascending
 *   REVERSE  "reverse cat?"         -> "tac"       a word of 3 to 5 letters
 *   COUNT    "count a in banana?"   -> "3"         occurrences of a letter in a word
 *   CAPITAL  "capital of France?"   -> "Paris"     a small table of countries
 * </pre>
 *
 * @param kind the task family
 * @param instruction the prompt text
 * @param answer the one fully correct answer
 */
public record Task(Kind kind, String instruction, String answer) {

  /** Task families. */
  public enum Kind {
    ADD,
    SORT,
    REVERSE,
    COUNT,
    CAPITAL
  }

  private static final Pattern ADD = Pattern.compile("add (\\d+)\\+(\\d+)\\?");
  private static final Pattern SORT = Pattern.compile("sort (\\d+)\\?");
  private static final Pattern REVERSE = Pattern.compile("reverse ([a-z]+)\\?");
  private static final Pattern COUNT = Pattern.compile("count ([a-z]) in ([a-z]+)\\?");
  private static final Pattern CAPITAL = Pattern.compile("capital of ([A-Za-z ]+)\\?");

  public Task {
    if (kind == null || instruction == null || answer == null || answer.isEmpty()) {
      throw new IllegalArgumentException(
          "task needs a kind, an instruction and a non-empty answer, got "
              + kind
              + " '"
              + instruction
              + "' -> '"
              + answer
              + "'");
    }
  }

  public static Task add(int a, int b) {
    return new Task(Kind.ADD, "add " + a + "+" + b + "?", Integer.toString(a + b));
  }

  public static Task sort(String digits) {
    char[] c = digits.toCharArray();
    java.util.Arrays.sort(c);
    return new Task(Kind.SORT, "sort " + digits + "?", new String(c));
  }

  public static Task reverse(String word) {
    return new Task(
        Kind.REVERSE, "reverse " + word + "?", new StringBuilder(word).reverse().toString());
  }

  public static Task count(char letter, String word) {
    long n = word.chars().filter(ch -> ch == letter).count();
    return new Task(Kind.COUNT, "count " + letter + " in " + word + "?", Long.toString(n));
  }

  public static Task capital(String country) {
    String city = Facts.CAPITALS.get(country);
    if (city == null) {
      throw new IllegalArgumentException(
          "no capital known for '" + country + "' (known: " + Facts.CAPITALS.keySet() + ")");
    }
    return new Task(Kind.CAPITAL, "capital of " + country + "?", city);
  }

  /**
   * Recovers the task from its instruction text (what the gold judge does with a prompt).
   *
   * @throws IllegalArgumentException if the text is not a prompt of this world
   */
  public static Task parse(String instruction) {
    Matcher m;
    if ((m = ADD.matcher(instruction)).matches()) {
      return add(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)));
    }
    if ((m = SORT.matcher(instruction)).matches()) {
      return sort(m.group(1));
    }
    if ((m = REVERSE.matcher(instruction)).matches()) {
      return reverse(m.group(1));
    }
    if ((m = COUNT.matcher(instruction)).matches()) {
      return count(m.group(1).charAt(0), m.group(2));
    }
    if ((m = CAPITAL.matcher(instruction)).matches()) {
      return capital(m.group(1));
    }
    throw new IllegalArgumentException(
        "not a prompt of this world: '"
            + instruction
            + "' (expected e.g. 'add 23+45?', 'sort 3917?', "
            + "'reverse cat?', 'count a in banana?', 'capital of France?')");
  }

  @Override
  public String toString() {
    return kind.name().toLowerCase(Locale.ROOT) + "[" + instruction + " -> " + answer + "]";
  }
}
