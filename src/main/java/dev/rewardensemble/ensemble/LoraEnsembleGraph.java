package dev.rewardensemble.ensemble;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.lora.BatchedProduct;
import dev.rewardensemble.lora.FoldedProduct;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.LoraProduct;
import dev.rewardensemble.lora.PeftAdapters;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.model.Attention;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.ForwardGraph;
import dev.rewardensemble.model.Layers;
import dev.rewardensemble.model.Members;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.RewardHeads;
import dev.rewardensemble.model.Transformers;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.tensorflow.Operand;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * A LoRA ensemble reward model: one frozen base trunk, K LoRA adapters ({@link StackedLora}) and K
 * linear heads {@code score.weight [K, H]}, all K members computed in one {@code Session.run}.
 *
 * <p>Placeholders {@code input_ids} and {@code attention_mask} (int32 {@code [B, T]}, dynamic). The
 * trunk runs blocks below {@link LoraConfig#forkLayer} once, then forks into K member-major copies
 * ({@link Members}); the output op {@code rewards [B, K]} holds member k's reward in column k.
 *
 * <p>The trainable set is explicit: {@link #trainable()} is the adapters and the heads; every base
 * weight is frozen ({@link #frozenNames()}).
 *
 * @param rewards {@code [B, K]}, op name {@code rewards}
 */
public record LoraEnsembleGraph(
    ModelConfig config,
    LoraConfig lora,
    int members,
    ParameterStore params,
    StackedLora adapters,
    Placeholder<TInt32> inputIds,
    Placeholder<TInt32> attentionMask,
    Operand<TFloat32> rewards) {

  /** Name of the rewards op. */
  public static final String REWARDS = "rewards";

  /**
   * Deterministic graph for scoring (no dropout), for a session of {@code cx}: adapters folded into
   * the base products, or batched under XLA ({@link LoraProduct#forScoring}).
   */
  public static LoraEnsembleGraph scoring(
      BuildContext cx,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      RewardToken rewardToken) {
    return build(cx, c, lora, k, params, StackedLora.scoring(cx, c, lora, k, params), rewardToken);
  }

  /** Deterministic graph for scoring in float32, adapters folded into the base products. */
  public static LoraEnsembleGraph inference(
      Ops tf,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      RewardToken rewardToken) {
    return scoring(BuildContext.float32(tf), c, lora, k, params, rewardToken);
  }

  /**
   * Deterministic graph for scoring in float32; {@code fold}: adapters folded into the base
   * products ({@link FoldedProduct}) or batched ({@link BatchedProduct}).
   */
  public static LoraEnsembleGraph inference(
      Ops tf,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      boolean fold,
      RewardToken rewardToken) {
    BuildContext cx = BuildContext.float32(tf);
    return withProduct(
        cx,
        c,
        lora,
        k,
        params,
        fold ? LoraProduct.folded(cx, k, lora) : LoraProduct.batched(k, lora),
        rewardToken);
  }

  /**
   * Graph for training: adapter inputs dropped with {@link LoraConfig#dropout()}, stateless masks
   * keyed by {@code seed} and the fed {@link StackedLora#DROPOUT_KEY} (see {@link StackedLora}).
   */
  public static LoraEnsembleGraph training(
      BuildContext cx,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      long seed,
      RewardToken rewardToken) {
    return training(cx, c, lora, k, params, seed, rewardToken, null, null);
  }

  /**
   * The training graph with a fixed prior added to the heads ({@link RewardHeads#withPrior}, a
   * randomized prior on each member's final hidden state; null: none) and a LoRA rank per member
   * ({@link StackedLora#training(BuildContext, ModelConfig, LoraConfig, int, ParameterStore, long,
   * int[])}; null: every member {@code lora.rank()}).
   */
  public static LoraEnsembleGraph training(
      BuildContext cx,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      long seed,
      RewardToken rewardToken,
      FloatTensor prior,
      int[] memberRanks) {
    return build(
        cx,
        c,
        lora,
        k,
        params,
        StackedLora.training(cx, c, lora, k, params, seed, memberRanks),
        rewardToken,
        prior);
  }

  /**
   * {@link #training(BuildContext, ModelConfig, LoraConfig, int, ParameterStore, long,
   * RewardToken)} in float32.
   */
  public static LoraEnsembleGraph training(
      Ops tf,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      long seed,
      RewardToken rewardToken) {
    return training(BuildContext.float32(tf), c, lora, k, params, seed, rewardToken);
  }

  /**
   * The graph with the adapters' deltas computed by {@code product} (made for {@code cx}'s graph, K
   * and lora).
   */
  public static LoraEnsembleGraph withProduct(
      BuildContext cx,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      LoraProduct product,
      RewardToken rewardToken) {
    return build(
        cx,
        c,
        lora,
        k,
        params,
        StackedLora.withProduct(cx, c, lora, k, params, product),
        rewardToken);
  }

  private static LoraEnsembleGraph build(
      BuildContext cx,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      StackedLora adapters,
      RewardToken rewardToken) {
    return build(cx, c, lora, k, params, adapters, rewardToken, null);
  }

  private static LoraEnsembleGraph build(
      BuildContext cx,
      ModelConfig c,
      LoraConfig lora,
      int k,
      ParameterStore params,
      StackedLora adapters,
      RewardToken rewardToken,
      FloatTensor prior) {
    Ops tf = cx.tf();
    Placeholder<TInt32> ids =
        tf.withName("input_ids").placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
    Placeholder<TInt32> mask =
        tf.withName("attention_mask")
            .placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
    int h = c.hiddenSize();
    Members m = Members.of(tf, k, lora.forkLayer(c), mask);
    Operand<TFloat32> rows =
        Transformers.trunk(
            cx, c, params, ids, Attention.geometry(tf, mask), adapters, m); // [K*B*T, H]
    Operand<TInt32> read =
        tf.tile(
            RewardHeads.readMask(tf, ids, mask, rewardToken, c.padTokenId()),
            tf.constant(new int[] {k, 1})); // [K*B, T], member-major as the rows
    Operand<TFloat32> last = RewardHeads.lastToken(tf, rows, read, m.geometry()); // [K*B, H]
    Operand<TFloat32> last3 = tf.reshape(last, tf.constant(new int[] {k, -1, h})); // [K, B, H]
    Operand<TFloat32> w =
        RewardHeads.withPrior(
            tf,
            tf.identity(params.get(RewardHeads.KEY, k, h)),
            prior); // [K, H], not float_ref (see StackedLora)
    Operand<TFloat32> w3 = tf.expandDims(w, tf.constant(1)); // [K, 1, H]
    Operand<TFloat32> perMember = Layers.batchMatMul(tf, last3, w3, true); // [K, B, 1]
    Operand<TFloat32> kb = tf.reshape(perMember, tf.constant(new int[] {k, -1})); // [K, B]
    Operand<TFloat32> rewards =
        tf.withName(REWARDS).linalg.transpose(kb, tf.constant(new int[] {1, 0})); // [B, K]
    return new LoraEnsembleGraph(c, lora, k, params, adapters, ids, mask, rewards);
  }

  /** The forward graph ({@code rewards [B, K]}) that scoring, training and export work on. */
  public ForwardGraph forward() {
    return new ForwardGraph(inputIds, attentionMask, rewards, params, members);
  }

  /**
   * Keys of the variables a LoRA ensemble of {@code c} and {@code lora} trains, in checkpoint
   * order: every adapter's A and B ({@link StackedLora#modules}), then the heads {@code
   * score.weight}. Every other variable of the graph (the base trunk) is frozen. Known before any
   * graph is built, so that a run can name its trainable set up front.
   */
  public static List<String> trainableKeys(ModelConfig c, LoraConfig lora) {
    List<String> out = new ArrayList<>();
    for (StackedLora.Module m : StackedLora.modules(c, lora)) {
      out.add(m.module() + StackedLora.A);
      out.add(m.module() + StackedLora.B);
    }
    out.add(RewardHeads.KEY);
    return out;
  }

  /** Names of the trainable variables: every adapter's A and B, then {@code score.weight}. */
  public List<String> trainableNames() {
    return trainableKeys(config, lora);
  }

  /** The trainable variables, in the order of {@link #trainableNames()}. */
  public List<Variable<TFloat32>> trainable() {
    List<Variable<TFloat32>> out = new ArrayList<>(adapters.variables());
    out.add(params.variable(RewardHeads.KEY));
    return out;
  }

  /** Names of the frozen base weights (every variable of the store that is not trainable). */
  public List<String> frozenNames() {
    List<String> out = new ArrayList<>(params.names());
    out.removeAll(trainableNames());
    return out;
  }

  /**
   * Loads the frozen base trunk from checkpoint weights. A {@code score.weight} of the base
   * checkpoint is ignored (the ensemble has its own K heads); every trunk weight must be present.
   */
  public void loadBase(Session s, Map<String, FloatTensor> base, String source) {
    Map<String, FloatTensor> trunk = new LinkedHashMap<>();
    for (String name : frozenNames()) {
      FloatTensor t = base.get(name);
      if (t == null) {
        throw new IllegalArgumentException(source + ": missing base tensor '" + name + "'");
      }
      trunk.put(name, t);
    }
    params.load(s, trunk, true, source);
  }

  /**
   * Loads stacked adapters and heads (e.g. from {@link PeftAdapters#load}). Their {@link
   * LoraConfig} must equal the graph's except for the dropout rate (which only the training build
   * uses), and every trainable variable must be given.
   */
  public void loadAdapters(Session s, PeftAdapters.Stacked stacked, String source) {
    if (stacked.members() != members) {
      throw new IllegalArgumentException(
          source + ": " + stacked.members() + " adapters, the graph has " + members + " members");
    }
    if (!stacked.lora().withDropout(0).equals(lora.withDropout(0))) {
      throw new IllegalArgumentException(
          source + ": adapters have " + stacked.lora() + ", the graph " + lora);
    }
    for (String name : trainableNames()) {
      if (!stacked.weights().containsKey(name)) {
        throw new IllegalArgumentException(source + ": missing adapter tensor '" + name + "'");
      }
    }
    params.load(s, stacked.weights(), true, source);
  }

  /** Reads the current adapters and heads from the session, for {@link PeftAdapters#export}. */
  public PeftAdapters.Stacked readAdapters(Session s) {
    return new PeftAdapters.Stacked(config, lora, members, params.read(s, trainableNames()));
  }

  /**
   * Fresh trainable values of this graph's configuration ({@link LoraInit#values}): PEFT's adapter
   * initialisation and heads drawn from {@code N(0, headStd^2)}, seeded.
   */
  public Map<String, FloatTensor> initialValues(long seed, double headStd) {
    return LoraInit.values(config, lora, members, seed, headStd);
  }
}
