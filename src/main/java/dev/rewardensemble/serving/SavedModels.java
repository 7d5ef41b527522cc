package dev.rewardensemble.serving;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.ModelConfigs;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.ensemble.Aggregation;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleModel;
import dev.rewardensemble.ensemble.EnsembleSpec;
import dev.rewardensemble.ensemble.Normalization;
import dev.rewardensemble.io.AtomicDirs;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.io.LazyWeights;
import dev.rewardensemble.io.OutputDirs;
import dev.rewardensemble.io.TempPaths;
import dev.rewardensemble.model.ForwardGraph;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.model.RewardHeads;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.Session;
import org.tensorflow.Signature;
import org.tensorflow.TensorFlow;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * Export of reward models (K heads) as TensorFlow SavedModels for TF Serving and Python, and as
 * Hugging Face checkpoints ({@code --format hf}).
 *
 * <p>A SavedModel directory ({@code savedmodels/NAME/VERSION/}, TF Serving's layout) holds a fresh
 * inference-only graph: no optimizer, no training ops. Tag {@value #TAG}, signature {@value
 * #SIGNATURE} (method {@value #METHOD}):
 *
 * <pre>
 * inputs   input_ids       int32 [B, T]   right- or left-padded token ids
 *          attention_mask  int32 [B, T]   1 for real tokens
 * outputs  reward          float [B]      the aggregated reward (K = 1: the single head)
 *          members         float [B, K]   every head's reward           (K > 1 only)
 *          mean, std, lcb  float [B]      mean, population std, mean - beta * std (K > 1 only)
 * </pre>
 *
 * <p>{@value #ASSET} (TF Serving's place for extra files, ignored by the loaders) holds the Hugging
 * Face model config, K, the aggregation, the token the reward is read at ({@value RewardToken#KEY},
 * baked into the graph) and the provenance.
 */
public final class SavedModels {
  public static final String TAG = "serve";
  public static final String SIGNATURE = "serving_default";
  public static final String METHOD = "tensorflow/serving/predict";

  /** Path of the metadata file inside a SavedModel directory. */
  public static final String ASSET = "assets.extra/rme-model.json";

  /** Value of the {@code format} key of the metadata file. */
  public static final String FORMAT = "rme-savedmodel";

  public static final String INPUT_IDS = "input_ids";
  public static final String ATTENTION_MASK = "attention_mask";
  public static final String REWARD = "reward";
  public static final String MEMBERS = "members";
  public static final String MEAN = "mean";
  public static final String STD = "std";
  public static final String LCB = "lcb";

  private static final ObjectMapper JSON = new ObjectMapper();

  private SavedModels() {}

  /** Exports a SavedModel into {@code dir}; refuses to replace an existing directory. */
  public static Path export(
      Path dir,
      ModelConfig config,
      int heads,
      Map<String, FloatTensor> weights,
      RewardToken rewardToken,
      AggregationConfig agg,
      Map<String, Object> provenance)
      throws IOException {
    return export(dir, config, heads, weights, rewardToken, agg, provenance, false);
  }

  /**
   * Exports a reward model with {@code heads} heads as a SavedModel into {@code dir} (normally
   * {@code root/NAME/VERSION}). The model is written under a temporary name beside {@code dir} and
   * renamed only when complete; on failure nothing is left under {@code dir}'s name.
   *
   * @param weights trunk weights and {@code score.weight [heads, H]} by Hugging Face key ({@code
   *     lm_head.weight}, if present, is ignored)
   * @param rewardToken the token the reward is read at (baked into the graph)
   * @param provenance caller's facts (data hash, seed, ...), stored with the library versions and
   *     the git commit
   * @param overwrite replace an existing {@code dir}
   * @return {@code dir} as an absolute path
   * @throws IllegalArgumentException when {@code dir} exists and not {@code overwrite}, or the
   *     weights do not fit the config
   */
  public static Path export(
      Path dir,
      ModelConfig config,
      int heads,
      Map<String, FloatTensor> weights,
      RewardToken rewardToken,
      AggregationConfig agg,
      Map<String, Object> provenance,
      boolean overwrite)
      throws IOException {
    EnsembleSpec spec = EnsembleSpec.heads(heads).withAggregation(agg); // validates K
    Map<String, FloatTensor> w =
        modelWeights(config, heads, weights, dir.toAbsolutePath().normalize());
    EnsembleModel m = new EnsembleModel(spec, config, rewardToken, w, null, Optional.empty(), dir);
    return export(dir, m, provenance, overwrite);
  }

  /**
   * Exports a reward model or ensemble of any kind (single, linear, independent, LoRA) as one
   * SavedModel: every member runs in the one graph; per-member normalisation, when the model has
   * it, is applied in the graph before the aggregation ({@code members} stays raw).
   */
  public static Path export(
      Path dir, EnsembleModel model, Map<String, Object> provenance, boolean overwrite)
      throws IOException {
    try (var lock =
        dev.rewardensemble.io.DirLock.sibling(dir)) { // NAME/.V.lock: one writer per version
      return exportLocked(dir, model, provenance, overwrite);
    }
  }

  private static Path exportLocked(
      Path dir, EnsembleModel model, Map<String, Object> provenance, boolean overwrite)
      throws IOException {
    Path target = dir.toAbsolutePath().normalize();
    if (Files.exists(target) && !overwrite) {
      throw new IllegalArgumentException(
          "cannot export to "
              + target
              + ": it already exists (choose another version or overwrite it)");
    }
    ModelConfig config = model.config();
    int heads = model.members();
    AggregationConfig agg = model.aggregation();
    ObjectNode meta = metadata(config, heads, agg, provenance);
    meta.put("kind", model.kind().id());
    meta.put(RewardToken.KEY, model.rewardToken().id());
    model
        .normalization()
        .ifPresent(
            n ->
                meta.set(
                    "normalization",
                    JSON.valueToTree(
                        Map.of(
                            "mean",
                            n.mean(),
                            "std",
                            n.std(),
                            "reference_size",
                            n.referenceSize(),
                            "std_kind",
                            "population"))));
    // Not Files.createTempDirectory (mode 0700): the export must be readable by TF Serving running
    // as another user, so it gets the default permissions (umask). Stale leftovers of interrupted
    // exports of this version are removed first.
    Path tmp = TempPaths.newDirectory(target);
    try {
      exportGraph(tmp, model, target);
      Path asset = tmp.resolve(ASSET);
      Files.createDirectories(asset.getParent());
      Files.writeString(
          asset, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(meta) + "\n");
      if (overwrite) {
        AtomicDirs.replace(tmp, target);
      } else {
        try {
          Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
          Files.move(tmp, target);
        }
      }
    } catch (IOException | RuntimeException e) {
      AtomicDirs.deleteRecursively(tmp);
      if (e instanceof java.nio.file.FileSystemException && Files.exists(target) && !overwrite) {
        throw new IllegalArgumentException(
            "cannot export to " + target + ": it already exists (created while exporting)", e);
      }
      throw e;
    }
    return target;
  }

  /** Loads a SavedModel exported by {@link #export}. */
  public static SavedModelScorer load(Path dir) throws IOException {
    return SavedModelScorer.load(dir);
  }

  /**
   * Writes a Hugging Face checkpoint ({@code config.json} + {@code model.safetensors}) of a reward
   * model with {@code heads} heads: {@code GPT2ForSequenceClassification} or {@code
   * LlamaForSequenceClassification} with {@code num_labels = heads}, loadable by transformers'
   * {@code AutoModelForSequenceClassification}. A new {@code dir} appears complete or not at all;
   * in an existing {@code dir} only {@code config.json} and {@code model.safetensors} are replaced
   * (each by a rename), other files stay.
   */
  public static void exportHf(
      Path dir, ModelConfig config, Map<String, FloatTensor> weights, int heads)
      throws IOException {
    Map<String, FloatTensor> w = modelWeights(config, heads, weights, dir);
    OutputDirs.write(dir, stage -> writeHf(stage, config, w, heads));
  }

  /**
   * Writes the two files of {@link #exportHf} into the existing directory {@code dir} (for a caller
   * that stages and publishes a larger export itself).
   */
  public static void writeHf(
      Path dir, ModelConfig config, Map<String, FloatTensor> weights, int heads)
      throws IOException {
    Map<String, FloatTensor> w = modelWeights(config, heads, weights, dir);
    Map<String, String> meta = new LinkedHashMap<>();
    meta.put("rme_heads", Integer.toString(heads));
    meta.put("rme_version", projectVersion());
    HfCheckpoint.writeFiles(dir, config, sequenceClassification(config), w, meta);
  }

  /** The family's causal-LM class ({@code GPT2LMHeadModel}, {@code LlamaForCausalLM}, ...). */
  public static String causalLm(ModelConfig config) {
    return config.causalLmArchitecture();
  }

  /** The family's reward-model class ({@code LlamaForSequenceClassification}, ...). */
  public static String sequenceClassification(ModelConfig config) {
    return config.sequenceClassificationArchitecture();
  }

  /** The weights the reward graph needs, checked: trunk + score.weight [K, H], no lm_head. */
  private static Map<String, FloatTensor> modelWeights(
      ModelConfig config, int heads, Map<String, FloatTensor> weights, Path target) {
    long[] want = {heads, config.hiddenSize()};
    if (!weights.containsKey(RewardHeads.KEY)) {
      throw new IllegalArgumentException(
          "cannot export to "
              + target
              + ": missing tensor '"
              + RewardHeads.KEY
              + "' "
              + Arrays.toString(want));
    }
    long[] score = LazyWeights.shapeOf(weights, RewardHeads.KEY);
    if (!Arrays.equals(score, want)) {
      throw new IllegalArgumentException(
          "cannot export to "
              + target
              + ": tensor '"
              + RewardHeads.KEY
              + "' has shape "
              + Arrays.toString(score)
              + ", "
              + heads
              + " heads need "
              + Arrays.toString(want));
    }
    LazyWeights w = new LazyWeights(weights); // tensors on disk stay there until written
    w.remove(LmHead.KEY);
    return w;
  }

  /** Builds the inference graph, loads the weights and writes the SavedModel into {@code tmp}. */
  private static void exportGraph(Path tmp, EnsembleModel model, Path target) throws IOException {
    int heads = model.members();
    try (Graph g = new Graph()) {
      Ops tf = Ops.create(g);
      ForwardGraph fg = model.build(tf);
      Signature.Builder sig =
          Signature.builder()
              .key(SIGNATURE)
              .methodName(METHOD)
              .input(INPUT_IDS, fg.inputIds())
              .input(ATTENTION_MASK, fg.attentionMask());
      // Op names must differ from every other node name ignoring case: Python's loader
      // (tf.saved_model.load) uniquifies names case-insensitively, so an op "mean" beside TF's
      // auto-named "Mean" could not be found there. Hence the "ensemble_" prefix.
      Operand<TFloat32> members = fg.rewards(); // [B, K]
      if (heads == 1) {
        sig.output(
            REWARD, tf.withName("reward").reshape(members, tf.constant(new int[] {-1}))); // [B]
      } else {
        Operand<TFloat32> standardized = members;
        if (model.normalization().isPresent()) {
          Normalization n = model.normalization().get();
          standardized =
              tf.math.div(
                  tf.math.sub(members, tf.constant(n.mean())), tf.constant(n.std())); // [B, K]
        }
        Aggregates a = aggregates(tf, standardized, model.aggregation());
        sig.output(REWARD, a.reward)
            .output(MEMBERS, tf.withName("ensemble_members").identity(members))
            .output(MEAN, a.mean)
            .output(STD, a.std)
            .output(LCB, a.lcb);
      }
      try (Session s = ExecConfig.defaults().newSession(g)) {
        fg.params().load(s, model.weights(), false, target.toString());
        SavedModelBundle.exporter(tmp.toString())
            .withTags(TAG)
            .withSession(s)
            .withSignature(sig.build())
            .export();
      }
    }
  }

  private record Aggregates(
      Operand<TFloat32> reward,
      Operand<TFloat32> mean,
      Operand<TFloat32> std,
      Operand<TFloat32> lcb) {}

  /**
   * Mean, population std, lower confidence bound and the aggregated reward over axis 1 of [B, K].
   */
  private static Aggregates aggregates(Ops tf, Operand<TFloat32> members, AggregationConfig agg) {
    var one = tf.constant(1);
    Operand<TFloat32> mean =
        tf.withName("ensemble_mean").identity(Aggregation.mean(tf, members)); // [B]
    Operand<TFloat32> std =
        tf.withName("ensemble_std").identity(Aggregation.std(tf, members)); // [B]
    Operand<TFloat32> lcb =
        tf.withName("ensemble_lcb")
            .math
            .sub(mean, tf.math.mul(tf.constant((float) agg.beta()), std)); // [B]
    Operand<TFloat32> reward =
        tf.withName("ensemble_reward").identity(agg.apply(tf, members)); // [B]
    return new Aggregates(reward, mean, std, lcb);
  }

  /** The content of {@value #ASSET}. */
  private static ObjectNode metadata(
      ModelConfig config, int heads, AggregationConfig agg, Map<String, Object> provenance) {
    ObjectNode o = JSON.createObjectNode();
    o.put("format", FORMAT);
    o.put("format_version", 1);
    o.put("heads", heads);
    o.set("config", ModelConfigs.toHf(config, sequenceClassification(config), heads));
    ObjectNode a = o.putObject("aggregation");
    a.put("rule", agg.rule().name().toLowerCase(java.util.Locale.ROOT));
    a.put("beta", agg.beta());
    a.put("lambda", agg.lambda());
    ObjectNode s = o.putObject("signature");
    s.put("key", SIGNATURE);
    s.put("method_name", METHOD);
    s.putArray("inputs").add(INPUT_IDS).add(ATTENTION_MASK);
    var outs = s.putArray("outputs").add(REWARD);
    if (heads > 1) {
      outs.add(MEMBERS).add(MEAN).add(STD).add(LCB);
    }
    Map<String, Object> p = new LinkedHashMap<>(provenance == null ? Map.of() : provenance);
    p.putIfAbsent("git_commit", gitCommit());
    p.putIfAbsent("created", Instant.now().toString());
    Map<String, Object> libs = new LinkedHashMap<>();
    libs.put("reward_ensemble", projectVersion());
    libs.put("tensorflow", TensorFlow.version());
    libs.put("tensorflow_java", tensorflowJavaVersion());
    libs.put("java", System.getProperty("java.version"));
    libs.put(
        "java_vm",
        System.getProperty("java.vm.name") + " " + System.getProperty("java.vm.version"));
    p.putIfAbsent("libraries", libs);
    o.set("provenance", JSON.valueToTree(p));
    return o;
  }

  /** The project's version (from the build), or {@code "unknown"}. */
  public static String projectVersion() {
    try (InputStream in =
        SavedModels.class.getResourceAsStream("/dev/rewardensemble/version.properties")) {
      if (in != null) {
        Properties props = new Properties();
        props.load(in);
        String v = props.getProperty("version", "");
        if (!v.isBlank() && !v.startsWith("${")) {
          return v;
        }
      }
    } catch (IOException e) {
      // fall through: the version is informative only
    }
    return "unknown";
  }

  private static String tensorflowJavaVersion() {
    Package p = TensorFlow.class.getPackage();
    String v = p == null ? null : p.getImplementationVersion();
    return v == null ? "1.1.0" : v;
  }

  /** {@code git rev-parse HEAD} in the working directory (best effort, 5 s), or null. */
  static String gitCommit() {
    try {
      Process proc =
          new ProcessBuilder("git", "rev-parse", "HEAD")
              .redirectError(ProcessBuilder.Redirect.DISCARD)
              .start();
      proc.getOutputStream().close();
      if (!proc.waitFor(5, TimeUnit.SECONDS)) {
        proc.destroyForcibly();
        return null;
      }
      String out = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      return proc.exitValue() == 0 && out.matches("[0-9a-f]{40}") ? out : null;
    } catch (IOException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  static List<String> outputs(int heads) {
    return heads == 1 ? List.of(REWARD) : List.of(REWARD, MEMBERS, MEAN, STD, LCB);
  }
}
