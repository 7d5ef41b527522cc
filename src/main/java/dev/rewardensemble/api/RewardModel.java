package dev.rewardensemble.api;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.RewardGraph;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.tensorflow.Graph;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * A loaded reward model with K heads (K = 1 for a single model), ready to score token sequences in
 * batches: one {@code Session.run} per batch.
 *
 * <p>Thread-safe for concurrent {@link #score} calls. Close it to free the native graph and session.
 */
public final class RewardModel implements AutoCloseable {
  private final Graph graph;
  private final Session session;
  private final RewardGraph rg;
  private final Path source;
  private final Optional<Path> tokenizer;

  private RewardModel(Graph graph, Session session, RewardGraph rg, Path source, Optional<Path> tokenizer) {
    this.graph = graph;
    this.session = session;
    this.rg = rg;
    this.source = source;
    this.tokenizer = tokenizer;
  }

  /** Loads a Hugging Face checkpoint directory with TensorFlow's default threads. */
  public static RewardModel load(Path dir) throws IOException {
    return load(dir, ExecConfig.defaults());
  }

  /**
   * Loads a Hugging Face checkpoint directory. A causal LM or bare trunk gets one fresh reward head
   * (zero-initialised: all rewards 0 until trained).
   */
  public static RewardModel load(Path dir, ExecConfig exec) throws IOException {
    HfCheckpoint.Checkpoint ckpt = HfCheckpoint.load(dir);
    Map<String, FloatTensor> weights = new java.util.LinkedHashMap<>(ckpt.weights());
    int k = ckpt.numLabels();
    if (k == 0) {
      k = 1;
      weights.put("score.weight", FloatTensor.zeros(1, ckpt.config().hiddenSize()));
    }
    weights.remove("lm_head.weight");
    Path tok = dir.resolve("tokenizer.json");
    return fromWeights(ckpt.config(), k, weights, exec, dir, Files.isRegularFile(tok) ? Optional.of(tok) : Optional.empty());
  }

  /** Builds a model from a configuration and named weights (trunk + {@code score.weight [K, H]}). */
  public static RewardModel fromWeights(
      ModelConfig config, int heads, Map<String, FloatTensor> weights, ExecConfig exec, Path source,
      Optional<Path> tokenizer) {
    Graph g = new Graph();
    try {
      Ops tf = Ops.create(g);
      ParameterStore params = new ParameterStore(tf);
      RewardGraph rg = RewardGraph.build(tf, config, heads, params, Projector.NONE);
      Session s = new Session(g, exec.toProto());
      try {
        params.load(s, weights, false, String.valueOf(source));
      } catch (RuntimeException e) {
        s.close();
        throw e;
      }
      return new RewardModel(g, s, rg, source, tokenizer);
    } catch (RuntimeException e) {
      g.close();
      throw e;
    }
  }

  public ModelConfig config() {
    return rg.config();
  }

  /** Number of reward heads K. */
  public int heads() {
    return rg.heads();
  }

  public Path source() {
    return source;
  }

  /** The {@code tokenizer.json} found beside the model, if any. */
  public Optional<Path> tokenizer() {
    return tokenizer;
  }

  /**
   * Scores sequences: returns {@code [N][K]} rewards in input order. Sequences are grouped by length
   * into batches of at most {@code batchSize} to minimise padding.
   *
   * @throws IllegalArgumentException naming the sequence index for an empty sequence, an id outside
   *     the vocabulary, or a sequence longer than the model's positions
   */
  public float[][] score(List<int[]> sequences, int batchSize) {
    if (batchSize < 1) {
      throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
    }
    ModelConfig c = rg.config();
    for (int i = 0; i < sequences.size(); i++) {
      int[] s = sequences.get(i);
      if (s.length == 0) {
        throw new IllegalArgumentException("sequence " + i + " is empty");
      }
      if (s.length > c.maxPositions()) {
        throw new IllegalArgumentException(
            "sequence " + i + " has " + s.length + " tokens, more than the model's " + c.maxPositions()
                + " positions (use truncation)");
      }
      for (int id : s) {
        if (id < 0 || id >= c.vocabSize()) {
          throw new IllegalArgumentException(
              "sequence " + i + " has token id " + id + " outside the vocabulary [0, " + c.vocabSize() + ")");
        }
      }
    }
    Integer[] order = new Integer[sequences.size()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, Comparator.comparingInt(i -> sequences.get(i).length));
    float[][] out = new float[sequences.size()][];
    for (int start = 0; start < order.length; start += batchSize) {
      int end = Math.min(order.length, start + batchSize);
      List<int[]> batch = new ArrayList<>();
      for (int j = start; j < end; j++) {
        batch.add(sequences.get(order[j]));
      }
      float[][] r = scoreBatch(batch);
      for (int j = start; j < end; j++) {
        out[order[j]] = r[j - start];
      }
    }
    return out;
  }

  /** Scores one right-padded batch in one {@code Session.run}: {@code [B][K]}. */
  private float[][] scoreBatch(List<int[]> batch) {
    int b = batch.size();
    int t = batch.stream().mapToInt(s -> s.length).max().orElse(1);
    int[] ids = new int[b * t];
    int[] mask = new int[b * t];
    int pad = rg.config().padTokenId();
    for (int i = 0; i < b; i++) {
      int[] s = batch.get(i);
      Arrays.fill(ids, i * t, (i + 1) * t, pad);
      System.arraycopy(s, 0, ids, i * t, s.length);
      Arrays.fill(mask, i * t, i * t + s.length, 1);
    }
    return run(ids, mask, b, t);
  }

  /** Rewards {@code [B][K]} of an already padded batch ({@code ids}, {@code mask} row-major [B, T]). */
  public float[][] run(int[] ids, int[] mask, int b, int t) {
    try (TInt32 idT = TInt32.tensorOf(Shape.of(b, t), DataBuffers.of(ids, true, false));
        TInt32 maskT = TInt32.tensorOf(Shape.of(b, t), DataBuffers.of(mask, true, false));
        Result r = session.runner().feed(rg.inputIds(), idT).feed(rg.attentionMask(), maskT).fetch(rg.rewards()).run()) {
      TFloat32 rew = (TFloat32) r.get(0);
      int k = rg.heads();
      float[] flat = new float[b * k];
      rew.asRawTensor().data().asFloats().read(flat);
      float[][] out = new float[b][k];
      for (int i = 0; i < b; i++) {
        System.arraycopy(flat, i * k, out[i], 0, k);
      }
      return out;
    }
  }

  /** Current weights by checkpoint key. */
  public Map<String, FloatTensor> weights() {
    return rg.params().readAll(session);
  }

  @Override
  public void close() {
    session.close();
    graph.close();
  }
}
