import dev.rewardensemble.api.EnsembleOptions;
import dev.rewardensemble.api.RewardTraining;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.train.TrainListener;
import java.nio.file.Path;

/**
 * Trains a LoRA reward ensemble (the paper's Algorithm 1: phase 1 a full finetune on half of the
 * training split, phase 2 one LoRA adapter and head per member on the rest) with the paper's
 * settings, and prints the held-out accuracy of each member and aggregation.
 *
 * <pre>
 * java -cp "target/classes:$(cat target/classpath.txt)" examples/java/TrainLoraEnsemble.java \
 *     MODEL PREFS.jsonl RUN_DIR [K]
 * </pre>
 *
 * MODEL is a Hugging Face checkpoint, a run directory or a {@code tf-graphs/*.json} preset; the
 * preference file is AlpacaFarm, TRL or tokenized ({@code chosen_ids}/{@code rejected_ids}) rows.
 */
public class TrainLoraEnsemble {
  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println("usage: TrainLoraEnsemble MODEL PREFS RUN_DIR [K]");
      System.exit(2);
    }
    int k = args.length > 3 ? Integer.parseInt(args[3]) : 3;
    var request =
        RewardTraining.TrainRequest.of(Path.of(args[0]), Path.of(args[1]), Path.of(args[2]))
            .withEnsemble(EnsembleOptions.of(EnsembleKind.LORA, k));
    RewardTraining.Result result = RewardTraining.train(request, TrainListener.NONE);
    System.out.printf(
        "trained %d train / %d held-out pairs -> %s%n",
        result.trainPairs(), result.evalPairs(), result.runDir());
    if (result.diagnostics() != null) {
      double[] members = result.diagnostics().memberAccuracy();
      for (int m = 0; m < members.length; m++) {
        System.out.printf("member %d accuracy %.4f%n", m, members[m]);
      }
      result
          .diagnostics()
          .aggregationAccuracy()
          .forEach((aggregation, acc) -> System.out.printf("%s accuracy %.4f%n", aggregation, acc));
    }
  }
}
