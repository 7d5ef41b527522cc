package dev.rewardensemble.eval;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The world's prompts, split once from a seed into a training set (for demonstrations, preference
 * data and RL) and a held-out evaluation set.
 *
 * <p>Disjoint by construction for ADD (pairs a+b), SORT (digit strings), REVERSE (words) and COUNT
 * (letter/word pairs): each pool is shuffled and cut. CAPITAL is the exception: its table has only
 * {@code |Facts.CAPITALS|} = 24 entries, too few to hold facts out (a held-out capital could never
 * be learnt), so its evaluation prompts are the training prompts; it measures recall, not
 * generalisation. {@link #overlap()} lists exactly those prompts.
 *
 * <p>Only prompts are held out, not their ingredients: a held-out {@code add 23+45?} may have its
 * twin {@code add 45+23?} in training, and the words of held-out REVERSE prompts appear in COUNT
 * training prompts (and the other way round). With the default SFT policy, held-out REVERSE and ADD
 * are nearly never solved (under 5%), SORT, COUNT and CAPITAL about half the time.
 */
public final class TaskSets {
  private final Map<Task.Kind, List<Task>> train;
  private final Map<Task.Kind, List<Task>> eval;

  private TaskSets(Map<Task.Kind, List<Task>> train, Map<Task.Kind, List<Task>> eval) {
    this.train = train;
    this.eval = eval;
  }

  /**
   * Splits every pool.
   *
   * @param seed decides the shuffle of each pool
   * @param evalPerKind held-out prompts per task kind (CAPITAL: at most the table size)
   */
  public static TaskSets split(long seed, int evalPerKind) {
    if (evalPerKind < 1 || evalPerKind > 50) {
      throw new IllegalArgumentException("evalPerKind must be in [1, 50], got " + evalPerKind);
    }
    Map<Task.Kind, List<Task>> train = new EnumMap<>(Task.Kind.class);
    Map<Task.Kind, List<Task>> eval = new EnumMap<>(Task.Kind.class);
    for (Task.Kind kind : Task.Kind.values()) {
      List<Task> pool = pool(kind);
      Collections.shuffle(pool, new Random(seed * 31 + kind.ordinal()));
      if (kind == Task.Kind.CAPITAL) {
        train.put(kind, List.copyOf(pool));
        eval.put(kind, List.copyOf(pool.subList(0, Math.min(evalPerKind, pool.size()))));
      } else if (kind == Task.Kind.REVERSE) {
        // Few words: hold out a quarter of them at most.
        int n = Math.min(evalPerKind, pool.size() / 4);
        eval.put(kind, List.copyOf(pool.subList(0, n)));
        train.put(kind, List.copyOf(pool.subList(n, pool.size())));
      } else {
        eval.put(kind, List.copyOf(pool.subList(0, evalPerKind)));
        train.put(kind, List.copyOf(pool.subList(evalPerKind, pool.size())));
      }
    }
    return new TaskSets(train, eval);
  }

  /** Every prompt a kind can have, in a fixed order. */
  static List<Task> pool(Task.Kind kind) {
    List<Task> out = new ArrayList<>();
    switch (kind) {
      case ADD -> {
        for (int a = 0; a < 50; a++) {
          for (int b = 0; b < 50; b++) {
            out.add(Task.add(a, b));
          }
        }
      }
      case SORT -> {
        for (int n = 0; n < 1000; n++) {
          out.add(Task.sort(String.format("%03d", n)));
        }
        for (int n = 0; n < 10000; n++) {
          out.add(Task.sort(String.format("%04d", n)));
        }
      }
      case REVERSE -> Facts.WORDS.forEach(w -> out.add(Task.reverse(w)));
      case COUNT -> {
        for (String w : Facts.WORDS) {
          // Letters of the word (count >= 1) and a few that are not in it (count 0).
          w.chars().distinct().forEach(c -> out.add(Task.count((char) c, w)));
          for (char c : new char[] {'e', 'o', 's'}) {
            if (w.indexOf(c) < 0) {
              out.add(Task.count(c, w));
            }
          }
        }
      }
      case CAPITAL ->
          new java.util.TreeSet<>(Facts.CAPITALS.keySet()).forEach(c -> out.add(Task.capital(c)));
    }
    return out;
  }

  /** Training prompts of a kind. */
  public List<Task> train(Task.Kind kind) {
    return train.get(kind);
  }

  /** Held-out prompts of a kind. */
  public List<Task> eval(Task.Kind kind) {
    return eval.get(kind);
  }

  /** Every training prompt, kind by kind. */
  public List<Task> train() {
    List<Task> out = new ArrayList<>();
    train.values().forEach(out::addAll);
    return out;
  }

  /** Every held-out prompt, kind by kind. */
  public List<Task> eval() {
    List<Task> out = new ArrayList<>();
    eval.values().forEach(out::addAll);
    return out;
  }

  /**
   * Evaluation prompts that are also training prompts (the CAPITAL ones, see the class comment).
   */
  public List<Task> overlap() {
    java.util.Set<String> t = new java.util.HashSet<>();
    train().forEach(x -> t.add(x.instruction()));
    return eval().stream().filter(x -> t.contains(x.instruction())).toList();
  }
}
