package dev.rewardensemble.cli;

import com.google.protobuf.TextFormat;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.RewardGraph;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.tensorflow.Graph;
import org.tensorflow.op.Ops;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code rme graph}: writes the GraphDef built from a {@code tf-graphs/} preset, for inspection.
 */
@Command(
    name = "graph",
    mixinStandardHelpOptions = true,
    description =
        "Build the reward-model graph of an architecture preset and write its GraphDef (text).")
public final class GraphCommand implements Callable<Integer> {
  @Option(
      names = "--spec",
      required = true,
      description = "Architecture preset (tf-graphs/*.json or a config.json).")
  Path spec;

  @Option(names = "--out", required = true, description = "Output .pbtxt file.")
  Path out;

  @Option(
      names = "--heads",
      defaultValue = "1",
      description = "Reward heads K (default: ${DEFAULT-VALUE}).")
  int heads;

  @Override
  public Integer call() throws Exception {
    Outputs.paths().inputFile("--spec", spec).outputFile("--out", out).check();
    ModelConfig c = ModelConfigs.read(spec);
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ParameterStore p = new ParameterStore(tf);
      RewardGraph.build(tf, c, heads, p, Projector.NONE, RewardToken.ofHfConfig(spec));
      String text = TextFormat.printer().printToString(g.toGraphDef());
      Outputs.writeLines(
          out, List.of(text.endsWith("\n") ? text.substring(0, text.length() - 1) : text));
      System.out.printf(
          "%s: %s, %d parameters, %d graph nodes -> %s%n",
          spec, c.modelType(), p.count(p.names()), g.toGraphDef().getNodeCount(), out);
    }
    return 0;
  }
}
