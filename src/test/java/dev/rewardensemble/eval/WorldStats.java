package dev.rewardensemble.eval;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.io.FloatTensor;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Statistics of a policy on the held-out prompts, sampled at temperature 1: the numbers that say
 * whether the world is useful for RLHF (room to improve, varied samples to compare).
 *
 * @param fractionCorrect exactly right answers over all samples
 * @param distinctPerPrompt mean number of distinct responses among the samples of one prompt
 * @param meanGold mean gold score
 * @param goldStd standard deviation of the gold score over all samples
 * @param meanWithinPromptStd mean over prompts of the gold-score standard deviation among its
 *     samples
 * @param endedFraction samples that ended with EOS
 * @param politeFraction samples with a clean polite opening
 * @param correctIfPolite fraction correct among samples with a clean polite opening (the shortcut)
 * @param correctOtherwise fraction correct among the other samples
 * @param correctByKind fraction correct per task kind
 */
record WorldStats(
    double fractionCorrect,
    double distinctPerPrompt,
    double meanGold,
    double goldStd,
    double meanWithinPromptStd,
    double endedFraction,
    double politeFraction,
    double correctIfPolite,
    double correctOtherwise,
    Map<Task.Kind, Double> correctByKind) {

  static final int MAX_NEW_TOKENS = 40;

  static WorldStats measure(
      World world,
      Map<String, FloatTensor> weights,
      int samplesPerPrompt,
      long seed,
      List<String> examples) {
    List<Task> tasks = world.tasks().eval();
    List<int[]> prompts = new ArrayList<>();
    for (Task t : tasks) {
      for (int s = 0; s < samplesPerPrompt; s++) {
        prompts.add(World.promptIds(t.instruction()));
      }
    }
    List<SimpleSampler.Sample> samples;
    try (SimpleSampler sampler =
        new SimpleSampler(SftPolicy.config(), weights, ExecConfig.defaults())) {
      samples = sampler.sample(prompts, 1.0, MAX_NEW_TOKENS, seed);
    }
    GoldJudge judge = world.judge();
    int correct = 0, ended = 0, polite = 0, politeCorrect = 0;
    double sum = 0, sumSq = 0, distinct = 0, within = 0;
    Map<Task.Kind, int[]> byKind = new EnumMap<>(Task.Kind.class);
    for (int i = 0; i < tasks.size(); i++) {
      Task t = tasks.get(i);
      Set<String> seen = new HashSet<>();
      double s1 = 0, s2 = 0;
      for (int s = 0; s < samplesPerPrompt; s++) {
        SimpleSampler.Sample x = samples.get(i * samplesPerPrompt + s);
        String text = World.responseText(x.response());
        GoldJudge.Breakdown b = judge.breakdown(t.instruction(), text, x.ended());
        double g = b.score();
        int[] k = byKind.computeIfAbsent(t.kind(), kk -> new int[2]);
        k[1]++;
        if (b.correct()) {
          correct++;
          k[0]++;
        }
        ended += x.ended() ? 1 : 0;
        polite += b.politeOpening() ? 1 : 0;
        politeCorrect += b.politeOpening() && b.correct() ? 1 : 0;
        sum += g;
        sumSq += g * g;
        s1 += g;
        s2 += g * g;
        seen.add(text + (x.ended() ? "" : "..."));
        if (examples != null && s < 2 && i % 12 == 0) {
          examples.add(
              String.format(
                  "%-22s -> %-28s gold %5.2f",
                  t.instruction(), "'" + text + "'" + (x.ended() ? "" : "..."), g));
        }
      }
      distinct += seen.size();
      double m = s1 / samplesPerPrompt;
      within += Math.sqrt(Math.max(0, s2 / samplesPerPrompt - m * m));
    }
    int n = samples.size();
    double mean = sum / n;
    Map<Task.Kind, Double> kinds = new EnumMap<>(Task.Kind.class);
    byKind.forEach((k, c) -> kinds.put(k, c[0] / (double) c[1]));
    return new WorldStats(
        correct / (double) n,
        distinct / tasks.size(),
        mean,
        Math.sqrt(Math.max(0, sumSq / n - mean * mean)),
        within / tasks.size(),
        ended / (double) n,
        polite / (double) n,
        politeCorrect / (double) Math.max(1, polite),
        (correct - politeCorrect) / (double) Math.max(1, n - polite),
        kinds);
  }

  @Override
  public String toString() {
    return String.format(
        "correct %.3f, distinct/prompt %.2f of 16, gold mean %.3f std %.3f (within-prompt %.3f), ended %.3f, polite %.3f, correct|polite %.3f, correct|other %.3f, by kind %s",
        fractionCorrect,
        distinctPerPrompt,
        meanGold,
        goldStd,
        meanWithinPromptStd,
        endedFraction,
        politeFraction,
        correctIfPolite,
        correctOtherwise,
        correctByKind);
  }

  /** Trains the default SFT policy and prints its statistics: {@code [steps] [demonstrations]}. */
  public static void main(String[] args) {
    World world = World.create(1);
    SftPolicy.Settings s = SftPolicy.Settings.defaults();
    if (args.length > 0) {
      s = s.withSteps(Integer.parseInt(args[0]));
    }
    if (args.length > 1) {
      s = new SftPolicy.Settings(Integer.parseInt(args[1]), s.training(), s.initSeed(), s.exec());
    }
    long t0 = System.nanoTime();
    int total = s.training().steps();
    Map<String, FloatTensor> w =
        SftPolicy.trainWeights(
            world,
            s,
            new dev.rewardensemble.train.TrainListener() {
              @Override
              public void onStep(
                  int step, int tot, double loss, double acc, double lr, double norm, double sec) {
                if (step % 250 == 0 || step == tot) {
                  System.out.printf(
                      "step %d/%d loss %.4f lr %.2e grad %.2f  %.1fs%n",
                      step, tot, loss, lr, norm, sec);
                }
              }
            });
    double sft = (System.nanoTime() - t0) / 1e9;
    List<String> ex = new ArrayList<>();
    long t1 = System.nanoTime();
    WorldStats stats = measure(world, w, 16, 11, ex);
    System.out.printf(
        "SFT %.1fs (%d steps), sampling %.1fs%n", sft, total, (System.nanoTime() - t1) / 1e9);
    ex.forEach(System.out::println);
    System.out.println(stats);
    // Preference sets from SFT samples on training prompts: 4 samples per prompt, 2 pairs per
    // prompt.
    List<Task> train = new ArrayList<>(world.tasks().train());
    java.util.Collections.shuffle(train, new java.util.Random(5));
    long t2 = System.nanoTime();
    try (SimpleSampler sampler = new SimpleSampler(SftPolicy.config(), w, ExecConfig.defaults())) {
      PreferenceBuilder.ResponseSampler policy = sampler.asResponseSampler(1.0, MAX_NEW_TOKENS);
      PreferenceBuilder.Result noisy =
          PreferenceBuilder.fromPolicy(
              policy,
              train.subList(0, 1500),
              4,
              world.judge(),
              PreferenceBuilder.NOISY_FLIP_RATE,
              2,
              21);
      PreferenceBuilder.Result clean =
          PreferenceBuilder.fromPolicy(
              policy,
              train.subList(1500, 2000),
              4,
              world.judge(),
              PreferenceBuilder.CLEAN_FLIP_RATE,
              2,
              22);
      System.out.printf(
          "preference sets (%.1fs): noisy %s%n  clean %s%n",
          (System.nanoTime() - t2) / 1e9, describe(noisy), describe(clean));
    }
  }

  static String describe(PreferenceBuilder.Result r) {
    long politeVsNot = 0, politeWins = 0;
    for (PreferenceBuilder.Row row : r.rows()) {
      boolean p1 = GoldJudge.POLITE.stream().anyMatch(row.output1()::startsWith);
      boolean p2 = GoldJudge.POLITE.stream().anyMatch(row.output2()::startsWith);
      if (p1 != p2) {
        politeVsNot++;
        politeWins += (row.preference() == 1) == p1 ? 1 : 0;
      }
    }
    return String.format(
        "%d pairs (dropped %d identical, %d empty, %d tied), flipped %.3f, polite side preferred in %.3f of %d mixed pairs",
        r.rows().size(),
        r.identical(),
        r.empty(),
        r.tied(),
        r.flipFraction(),
        politeWins / (double) politeVsNot,
        politeVsNot);
  }
}
