package dev.rewardensemble.eval;

import java.nio.file.Path;
import java.util.Locale;

/**
 * A demo run on settings changed from the fast preset (not a test; for small checks such as two
 * runs on disjoint world seeds): {@code DemoRun <out> worlds=3 seeds=1 worldSeed=11 sftSteps=1000
 * pool=100 evalPrompts=40 preferencePairs=500 ppoIterations=0 ...}.
 */
public final class DemoRun {
  private DemoRun() {}

  public static void main(String[] args) throws Exception {
    DemoSettings.Builder b = DemoSettings.fast(Path.of(args[0])).toBuilder();
    for (int i = 1; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      String v = kv[1];
      switch (kv[0]) {
        case "worlds" -> b.worlds(Integer.parseInt(v));
        case "seeds" -> b.seeds(Integer.parseInt(v));
        case "worldSeed" -> b.worldSeed(Long.parseLong(v));
        case "sftSteps" -> b.sftSteps(Integer.parseInt(v));
        case "pool" -> b.pool(Integer.parseInt(v));
        case "evalPrompts" ->
            b.evalPrompts(Integer.parseInt(v)).ppoEvalPrompts(Integer.parseInt(v));
        case "preferencePairs" ->
            b.preferencePairs(Integer.parseInt(v))
                .cleanPairs(DemoSettings.cleanPairsFor(Integer.parseInt(v)));
        case "ppoIterations" -> b.ppoIterations(Integer.parseInt(v));
        case "ppoEvalEvery" -> b.ppoEvalEvery(Integer.parseInt(v));
        case "ppoSeeds" -> b.ppoSeeds(Integer.parseInt(v));
        case "ppoLr" -> b.ppoLr(Double.parseDouble(v));
        case "ppoKl" -> b.ppoKlCoef(Double.parseDouble(v));
        case "ppoRollout" -> b.ppoRollout(Integer.parseInt(v));
        case "ppoMaxNewTokens" -> b.ppoMaxNewTokens(Integer.parseInt(v));
        case "threads" -> b.threads(Integer.parseInt(v));
        case "jobs" -> b.jobs(Integer.parseInt(v));
        default -> throw new IllegalArgumentException("DemoRun: unknown key " + kv[0]);
      }
    }
    Demo.Result r = Demo.run(b.build(), System.err::println);
    System.err.printf(Locale.ROOT, "DemoRun finished in %.1f s%n", r.seconds());
    System.out.println(r.report());
  }
}
