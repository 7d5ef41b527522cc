package dev.rewardensemble.eval;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Exploration of PPO settings for the demo (not a test): PPO against one trained reward model of an
 * existing demo run, printing win rate, gold, proxy and KL per evaluation.
 *
 * <p>{@code java ... dev.rewardensemble.eval.PpoExplore <world dir with sft/ and seed-S/rm-*>
 * world=1 rm=seed-0/rm-single agg=mean iters=80 every=10 lr=1e-3 kl=0 rollout=32 tokens=40
 * seeds=0,1 prompts=40 pool=64}
 */
public final class PpoExplore {
  private PpoExplore() {}

  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    Map<String, String> kv = new LinkedHashMap<>();
    for (int i = 1; i < args.length; i++) {
      String[] p = args[i].split("=", 2);
      kv.put(p[0], p[1]);
    }
    long worldSeed = Long.parseLong(kv.getOrDefault("world", "1"));
    int prompts = Integer.parseInt(kv.getOrDefault("prompts", "40"));
    DemoSettings s =
        DemoSettings.fast(dir.resolve("explore")).toBuilder()
            .ppoIterations(Integer.parseInt(kv.getOrDefault("iters", "80")))
            .ppoEvalEvery(Integer.parseInt(kv.getOrDefault("every", "10")))
            .ppoLr(Double.parseDouble(kv.getOrDefault("lr", "3e-4")))
            .ppoKlCoef(Double.parseDouble(kv.getOrDefault("kl", "0.05")))
            .ppoRollout(Integer.parseInt(kv.getOrDefault("rollout", "32")))
            .ppoMaxNewTokens(Integer.parseInt(kv.getOrDefault("tokens", "40")))
            .evalPrompts(prompts)
            .ppoEvalPrompts(prompts)
            .pool(Integer.parseInt(kv.getOrDefault("pool", "64")))
            .threads(Integer.parseInt(kv.getOrDefault("threads", "0")))
            .build();
    ExecConfig exec = new ExecConfig(s.threads(), 0, false);
    DemoData.Policy policy = new DemoData.Policy(World.create(worldSeed), dir.resolve("sft"), exec);
    long t0 = System.nanoTime();
    DemoData.EvalPool pool = DemoData.evalPool(s, policy);
    System.err.printf(Locale.ROOT, "[explore] pool in %.1f s%n", (System.nanoTime() - t0) / 1e9);
    AggregationConfig agg =
        kv.getOrDefault("agg", "mean").equals("mean")
            ? AggregationConfig.mean()
            : AggregationConfig.lcb(Double.parseDouble(kv.get("agg")));
    DemoMethod m = new DemoMethod("explore", EnsembleKind.SINGLE, 1, false);
    List<String> lines = new ArrayList<>();
    // compare=lr:kl,lr:kl runs each PPO seed under every listed (lr, KL) in turn, interleaved, for
    // time ratios measured side by side
    List<String> variants =
        List.of(kv.getOrDefault("compare", s.ppoLr() + ":" + s.ppoKlCoef()).split(","));
    DemoSettings base = s;
    for (String seed : kv.getOrDefault("seeds", "0").split(","))
      for (String variant : variants) {
        String[] lk = variant.split(":");
        DemoSettings sv =
            base.toBuilder()
                .ppoLr(Double.parseDouble(lk[0]))
                .ppoKlCoef(Double.parseDouble(lk[1]))
                .build();
        long t = System.nanoTime();
        PpoPhase.PpoCurve c =
            PpoPhase.runPpo(
                sv,
                policy,
                dir.resolve(kv.getOrDefault("rm", "seed-0/rm-single")),
                m.with(agg),
                pool.tasks(),
                pool.gold(),
                msg -> {},
                Integer.parseInt(seed));
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "[explore] %s lr:kl %s seed %s:", kv, variant, seed));
        for (PpoPhase.PpoPoint p : c.points()) {
          b.append(
              String.format(
                  Locale.ROOT,
                  " | it %d win %.3f gold %.3f proxy %.3f kl %.2f",
                  p.iteration(),
                  p.winRate(),
                  p.gold(),
                  p.proxy(),
                  p.kl()));
        }
        b.append(String.format(Locale.ROOT, " | %.1f s", (System.nanoTime() - t) / 1e9));
        System.out.println(b);
        lines.add(b.toString());
      }
  }
}
