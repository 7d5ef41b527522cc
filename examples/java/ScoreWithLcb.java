import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.MemberScores;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Scores token sequences with a reward model or ensemble and aggregates the members with the lower
 * confidence bound, {@code mean - beta * std} over the (standardised) members.
 *
 * <pre>
 * java -cp "target/classes:$(cat target/classpath.txt)" examples/java/ScoreWithLcb.java \
 *     MODEL ROWS.jsonl [BETA]
 * </pre>
 *
 * MODEL is a run directory of any ensemble kind, a Hugging Face checkpoint or an exported
 * SavedModel; each row of ROWS.jsonl is {@code {"input_ids": [..]}}. Prints one line per row.
 */
public class ScoreWithLcb {
  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: ScoreWithLcb MODEL ROWS.jsonl [BETA]");
      System.exit(2);
    }
    double beta = args.length > 2 ? Double.parseDouble(args[2]) : 0.5;
    ObjectMapper json = new ObjectMapper();
    List<int[]> sequences = new ArrayList<>();
    List<String> lines = Files.readAllLines(Path.of(args[1]));
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).isBlank()) {
        continue;
      }
      JsonNode ids = json.readTree(lines.get(i)).path("input_ids");
      if (!ids.isArray() || ids.isEmpty()) {
        throw new IllegalArgumentException(
            args[1] + ":" + (i + 1) + ": input_ids: expected a non-empty list of ids");
      }
      int[] seq = new int[ids.size()];
      for (int t = 0; t < seq.length; t++) {
        seq[t] = ids.get(t).asInt();
      }
      sequences.add(seq);
    }
    try (RewardModel rm = RewardModel.load(Path.of(args[0]))) {
      float[][] members = rm.score(sequences, 16); // [N][K] raw member rewards
      for (int i = 0; i < members.length; i++) {
        MemberScores s = rm.aggregate(members[i], AggregationConfig.lcb(beta));
        System.out.printf(
            "row %d: K=%d mean=%.6f std=%.6f lcb=%.6f%n",
            i, members[i].length, s.mean(), s.std(), s.reward());
      }
    }
  }
}
