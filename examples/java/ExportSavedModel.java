import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.serving.SavedModels;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Exports a trained reward model or ensemble (any kind: all K members in one graph, normalisation
 * applied in the graph) as a TensorFlow SavedModel in TF Serving's layout, {@code ROOT/NAME/1}.
 *
 * <pre>
 * java -cp "target/classes:$(cat target/classpath.txt)" examples/java/ExportSavedModel.java \
 *     MODEL OUT_DIR
 * </pre>
 *
 * The SavedModel's {@code serving_default} signature takes {@code input_ids} and {@code
 * attention_mask} ({@code int32 [B, T]}) and returns {@code reward}, {@code members}, {@code mean},
 * {@code std} and {@code lcb}; {@code RewardModel.load(OUT_DIR)} scores with it from Java.
 */
public class ExportSavedModel {
  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: ExportSavedModel MODEL OUT_DIR");
      System.exit(2);
    }
    EnsembleModel model = EnsembleModel.load(Path.of(args[0]), List.of());
    Path dir = SavedModels.export(Path.of(args[1]), model, Map.of("source", args[0]), false);
    System.out.printf(
        "exported %s (%s, K=%d) -> %s%n", args[0], model.kind().id(), model.members(), dir);
  }
}
