package dev.rewardensemble.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Gold-labelled preference data from policy samples, as in Gao et al. (2022): pairs of responses to
 * the same prompt, labelled by the {@link GoldJudge}, with a fraction of labels flipped to model
 * noisy human raters. Written in the AlpacaFarm format ({@code instruction}, {@code input}, {@code
 * output_1}, {@code output_2}, {@code preference}) that {@code rme train-rm} reads.
 *
 * <p>Per prompt, the samples are shuffled (seeded) and every unordered pair is considered in a
 * seeded random order until {@code maxPairsPerPrompt} are kept. A pair is dropped when the two
 * texts are identical, when either is empty (AlpacaFarm rows need text), or when their gold scores
 * tie (within {@link #TIE}): there is nothing to prefer. The kept pair's label is the better
 * response, then flipped with probability {@code flipRate}.
 */
public final class PreferenceBuilder {
  /** Label noise of the larger, noisier preference set. */
  public static final double NOISY_FLIP_RATE = 0.25;

  /** Label noise of the smaller, cleaner preference set. */
  public static final double CLEAN_FLIP_RATE = 0.10;

  /** Gold scores closer than this are a tie. */
  public static final double TIE = 1e-9;

  private PreferenceBuilder() {}

  /** One sampled response: its text (no special tokens) and whether it ended with EOS. */
  public record Response(String text, boolean ended) {
    public static Response ended(String text) {
      return new Response(text, true);
    }
  }

  /**
   * One preference row.
   *
   * @param preference 1 or 2, the (possibly flipped) preferred output
   * @param gold1 gold score of output 1
   * @param gold2 gold score of output 2
   * @param flipped whether the label contradicts the gold judge
   */
  public record Row(
      String instruction,
      String output1,
      String output2,
      int preference,
      double gold1,
      double gold2,
      boolean flipped) {}

  /** Rows and the counts of what was dropped. */
  public record Result(List<Row> rows, int identical, int empty, int tied, int flipped) {
    /** Fraction of rows whose label was flipped. */
    public double flipFraction() {
      return rows.isEmpty() ? 0 : flipped / (double) rows.size();
    }
  }

  /**
   * Builds gold-labelled pairs.
   *
   * @param samples responses per prompt (a prompt is a {@link Task#instruction()})
   * @param judge labels the pairs
   * @param flipRate probability of flipping a label, in [0, 0.5]
   * @param maxPairsPerPrompt pairs kept per prompt at most
   * @param seed pair selection and flips
   */
  public static Result build(
      Map<String, List<Response>> samples,
      GoldJudge judge,
      double flipRate,
      int maxPairsPerPrompt,
      long seed) {
    if (!(flipRate >= 0 && flipRate <= 0.5)) {
      throw new IllegalArgumentException("flip rate must be in [0, 0.5], got " + flipRate);
    }
    if (maxPairsPerPrompt < 1) {
      throw new IllegalArgumentException(
          "maxPairsPerPrompt must be >= 1, got " + maxPairsPerPrompt);
    }
    Random rng = new Random(seed);
    List<Row> rows = new ArrayList<>();
    int identical = 0, empty = 0, tied = 0, flipped = 0;
    for (Map.Entry<String, List<Response>> e : samples.entrySet()) {
      String prompt = e.getKey();
      List<Response> rs = new ArrayList<>(e.getValue());
      Collections.shuffle(rs, rng);
      double[] gold = new double[rs.size()];
      for (int i = 0; i < rs.size(); i++) {
        gold[i] = judge.score(prompt, rs.get(i).text(), rs.get(i).ended());
      }
      List<int[]> pairs = new ArrayList<>();
      for (int i = 0; i < rs.size(); i++) {
        for (int j = i + 1; j < rs.size(); j++) {
          pairs.add(new int[] {i, j});
        }
      }
      Collections.shuffle(pairs, rng);
      int kept = 0;
      for (int[] p : pairs) {
        if (kept == maxPairsPerPrompt) {
          break;
        }
        Response a = rs.get(p[0]);
        Response b = rs.get(p[1]);
        if (a.text().equals(b.text())) {
          identical++;
          continue;
        }
        if (a.text().isEmpty() || b.text().isEmpty()) {
          empty++;
          continue;
        }
        if (Math.abs(gold[p[0]] - gold[p[1]]) < TIE) {
          tied++;
          continue;
        }
        int better = gold[p[0]] > gold[p[1]] ? 1 : 2;
        boolean flip = rng.nextDouble() < flipRate;
        if (flip) {
          flipped++;
        }
        rows.add(
            new Row(
                prompt,
                a.text(),
                b.text(),
                flip ? 3 - better : better,
                gold[p[0]],
                gold[p[1]],
                flip));
        kept++;
      }
    }
    return new Result(List.copyOf(rows), identical, empty, tied, flipped);
  }

  /** Draws responses from a policy: one response per entry of {@code instructions}, in order. */
  @FunctionalInterface
  public interface ResponseSampler {
    List<Response> sample(List<String> instructions, long seed);
  }

  /**
   * Samples {@code samplesPerPrompt} responses per prompt from a policy and builds gold-labelled
   * pairs from them ({@link #build}).
   */
  public static Result fromPolicy(
      ResponseSampler policy,
      List<Task> prompts,
      int samplesPerPrompt,
      GoldJudge judge,
      double flipRate,
      int maxPairsPerPrompt,
      long seed) {
    if (samplesPerPrompt < 2) {
      throw new IllegalArgumentException(
          "need >= 2 samples per prompt to form a pair, got " + samplesPerPrompt);
    }
    List<String> flat = new ArrayList<>(prompts.size() * samplesPerPrompt);
    for (Task t : prompts) {
      for (int s = 0; s < samplesPerPrompt; s++) {
        flat.add(t.instruction());
      }
    }
    List<Response> rs = policy.sample(flat, seed);
    if (rs.size() != flat.size()) {
      throw new IllegalStateException(
          "sampler returned " + rs.size() + " responses for " + flat.size() + " prompts");
    }
    Map<String, List<Response>> byPrompt = new LinkedHashMap<>();
    for (int i = 0; i < flat.size(); i++) {
      byPrompt.computeIfAbsent(flat.get(i), k -> new ArrayList<>()).add(rs.get(i));
    }
    return build(byPrompt, judge, flipRate, maxPairsPerPrompt, seed);
  }

  /** {@link #build} for responses that all ended with EOS. */
  public static Result buildFromTexts(
      Map<String, List<String>> samples,
      GoldJudge judge,
      double flipRate,
      int maxPairsPerPrompt,
      long seed) {
    Map<String, List<Response>> m = new LinkedHashMap<>();
    samples.forEach((k, v) -> m.put(k, v.stream().map(Response::ended).toList()));
    return build(m, judge, flipRate, maxPairsPerPrompt, seed);
  }

  /** The rows as an AlpacaFarm JSON array ({@code input} is always empty). */
  public static String toAlpacaFarmJson(List<Row> rows) {
    ObjectMapper json = new ObjectMapper();
    ArrayNode arr = json.createArrayNode();
    for (Row r : rows) {
      ObjectNode o = arr.addObject();
      o.put("instruction", r.instruction());
      o.put("input", "");
      o.put("output_1", r.output1());
      o.put("output_2", r.output2());
      o.put("preference", r.preference());
    }
    try {
      return json.writerWithDefaultPrettyPrinter().writeValueAsString(arr);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise preference rows", e);
    }
  }

  /** Writes the rows as an AlpacaFarm JSON array file (via a temporary file and a rename). */
  public static void writeAlpacaFarm(List<Row> rows, Path file) throws IOException {
    Path dir = file.toAbsolutePath().getParent();
    java.nio.file.Files.createDirectories(dir);
    Path tmp = dev.rewardensemble.io.TempPaths.newFile(file);
    try {
      java.nio.file.Files.writeString(tmp, toAlpacaFarmJson(rows), StandardCharsets.UTF_8);
      java.nio.file.Files.move(
          tmp,
          file,
          java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } finally {
      java.nio.file.Files.deleteIfExists(tmp);
    }
  }
}
