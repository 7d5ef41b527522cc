package dev.rewardensemble.bench;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Run in a subprocess by {@link XlaCompilationCountTest} (with {@code TF_XLA_FLAGS} naming a
 * persistent cache): loads the reward model {@code args[0]} under {@code --xla auto}, scores one
 * sequence of each length of {@code args[1]} (comma-separated), then of {@code args[2]}, and prints
 * the compilations {@link XlaCompilations} counted after each group: {@code "c1 c2"}.
 */
public final class XlaCompilationProbe {
  private XlaCompilationProbe() {}

  public static void main(String[] args) throws Exception {
    XlaCompilations count =
        XlaCompilations.start().orElseThrow(() -> new IllegalStateException("no cache dir"));
    try (RewardModel rm =
        RewardModel.load(Path.of(args[0]), new ExecConfig(1, 1, ExecConfig.XlaMode.AUTO))) {
      List<Integer> counts = new ArrayList<>();
      for (int g = 1; g <= 2; g++) {
        for (String len : args[g].split(",")) {
          int[] ids = new int[Integer.parseInt(len)];
          for (int i = 0; i < ids.length; i++) {
            ids[i] = 3 + i % 50;
          }
          rm.score(List.of(ids), 1);
        }
        counts.add(count.count());
      }
      System.out.println(counts.get(0) + " " + counts.get(1));
    }
  }
}
