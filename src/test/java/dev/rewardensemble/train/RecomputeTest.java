package dev.rewardensemble.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.RewardToken;
import dev.rewardensemble.ensemble.LoraEnsembleGraph;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.io.HfCheckpoint;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import dev.rewardensemble.model.BuildContext;
import dev.rewardensemble.model.ForwardGraph;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.Recompute;
import dev.rewardensemble.model.RewardGraph;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.GraphOperation;
import org.tensorflow.Operand;
import org.tensorflow.Output;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gradients;
import org.tensorflow.op.core.Variable;
import org.tensorflow.proto.DataType;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.TInt64;

/**
 * Activation recomputation ({@link Recompute}): its gradients equal {@code tf.gradients} of the
 * whole graph for every trainable variable, and its gradient ops never read a block's internal
 * activations (only the blocks' inputs, after the incoming gradient).
 */
class RecomputeTest {
  static final int[][] IDS = {
    {5, 17, 23, 9, 4, 0}, {7, 3, 11, 2, 0, 0}, {6, 6, 19, 21, 8, 13}, {12, 4, 4, 0, 0, 0}
  };
  static final int[][] MASK = {
    {1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1}, {1, 1, 1, 0, 0, 0}
  };

  static Path family(String name) {
    try {
      return Path.of(
              RecomputeTest.class.getResource("/hf-families/" + name + "/config.json").toURI())
          .getParent();
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  static Path fixture(String name) {
    return dev.rewardensemble.testing.Fixtures.dir(name);
  }

  /** The graph of one comparison: forward, loss, both gradients of every trainable variable. */
  record Built(
      Graph graph,
      ForwardGraph fg,
      Recompute rec,
      Operand<TFloat32> loss,
      List<String> names,
      List<Operand<TFloat32>> plain,
      List<Operand<TFloat32>> recomputed,
      Set<String> forwardOps) {}

  static Built build(
      Graph g, Function<BuildContext, ForwardGraph> forward, Predicate<String> trainable) {
    return build(g, forward, trainable, new Recompute());
  }

  static Built build(
      Graph g,
      Function<BuildContext, ForwardGraph> forward,
      Predicate<String> trainable,
      Recompute rec) {
    Ops tf = Ops.create(g);
    ForwardGraph fg = forward.apply(BuildContext.float32(tf).withBlocks(rec));
    int k = fg.heads();
    Operand<TFloat32> pairs = tf.reshape(fg.rewards(), tf.constant(new int[] {2, -1, k}));
    Operand<TFloat32> rc = tf.gather(pairs, tf.constant(0), tf.constant(0)); // [B, K]
    Operand<TFloat32> rr = tf.gather(pairs, tf.constant(1), tf.constant(0));
    Operand<TFloat32> loss =
        tf.math.add(
            tf.math.mean(tf.math.softplus(tf.math.sub(rr, rc)), tf.constant(new int[] {0, 1})),
            tf.math.mul(
                tf.constant(0.1f),
                tf.math.mean(tf.math.square(tf.math.add(rc, rr)), tf.constant(new int[] {0, 1}))));
    Set<String> forwardOps = new HashSet<>();
    for (Iterator<GraphOperation> it = g.operations(); it.hasNext(); ) {
      forwardOps.add(it.next().name());
    }
    List<String> names = fg.params().names().stream().filter(trainable).toList();
    List<Variable<TFloat32>> vars = new ArrayList<>();
    names.forEach(n -> vars.add(fg.params().variable(n)));
    List<Operand<TFloat32>> recomputed = rec.gradients(tf, loss, vars);
    Gradients grads = tf.gradients(loss, vars);
    List<Operand<TFloat32>> plain = new ArrayList<>();
    for (int i = 0; i < vars.size(); i++) {
      @SuppressWarnings("unchecked")
      Operand<TFloat32> d = (Operand<TFloat32>) (Operand<?>) grads.dy(i);
      plain.add(d);
    }
    return new Built(g, fg, rec, loss, names, plain, recomputed, forwardOps);
  }

  /** Random values for every variable the checkpoint does not hold (adapters, extra heads). */
  static Map<String, FloatTensor> init(ParameterStore p, Map<String, FloatTensor> ckpt, long seed) {
    Map<String, FloatTensor> out = new LinkedHashMap<>();
    Random r = new Random(seed);
    for (String n : p.names()) {
      FloatTensor t = ckpt.get(n);
      long[] shape = p.shape(n);
      if (t == null || !java.util.Arrays.equals(t.shape(), shape)) {
        float[] d = new float[Math.toIntExact(FloatTensor.numElements(shape))];
        for (int i = 0; i < d.length; i++) {
          d[i] = (float) (r.nextGaussian() * 0.05);
        }
        t = new FloatTensor(shape, d);
      }
      out.put(n, t);
    }
    return out;
  }

  /** Runs both gradient sets and checks them equal at 1e-6 of each gradient's largest entry. */
  static void assertSameGradients(Built b, Map<String, FloatTensor> ckpt, boolean dropout) {
    try (Session s = new Session(b.graph())) {
      b.fg().params().load(s, init(b.fg().params(), ckpt, 3), false, "test");
      try (TInt32 ids = ints(IDS);
          TInt32 mask = ints(MASK);
          TInt64 key = TInt64.scalarOf(7)) {
        Session.Runner r =
            s.runner().feed(b.fg().inputIds(), ids).feed(b.fg().attentionMask(), mask);
        if (dropout) {
          r.feed(StackedLora.DROPOUT_KEY, key);
        }
        r.fetch(b.loss());
        b.plain().forEach(r::fetch);
        b.recomputed().forEach(r::fetch);
        try (Result res = r.run()) {
          int n = b.names().size();
          assertTrue(Float.isFinite(((TFloat32) res.get(0)).getFloat()));
          for (int i = 0; i < n; i++) {
            float[] want = floats((TFloat32) res.get(1 + i));
            float[] got = floats((TFloat32) res.get(1 + n + i));
            assertEquals(want.length, got.length, b.names().get(i));
            double scale = 0;
            for (float v : want) {
              scale = Math.max(scale, Math.abs(v));
            }
            assertTrue(scale > 0, b.names().get(i) + ": zero gradient, nothing compared");
            for (int j = 0; j < want.length; j++) {
              assertEquals(
                  want[j],
                  got[j],
                  1e-6 * scale,
                  b.names().get(i) + "[" + j + "] of " + want.length);
            }
          }
        }
      }
    }
  }

  @Test
  void fullFinetuneOfASingleLlamaRewardModel() throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(fixture("llama-seqcls"));
    try (Graph g = new Graph()) {
      Built b = build(g, cx -> plainModel(cx, ck.config(), 1), n -> true);
      assertEquals(ck.config().numLayers(), b.rec().size());
      assertSameGradients(b, ck.weights(), false);
      assertOnlyBlockInputsRead(b);
    }
  }

  /**
   * Selective recomputation ({@code --recompute N}): only the lowest N blocks are recorded and
   * rebuilt, the blocks above are differentiated through their own ops with the part above the
   * blocks; the gradients are the same for every depth.
   */
  @Test
  void onlyTheLowestBlocksAreRecomputed() throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(family("qwen2-seqcls"));
    int layers = ck.config().numLayers();
    assertTrue(layers >= 2, "the fixture needs two blocks");
    for (int depth = 0; depth < layers; depth++) {
      try (Graph g = new Graph()) {
        Built b = build(g, cx -> plainModel(cx, ck.config(), 2), n -> true, new Recompute(depth));
        assertEquals(depth, b.rec().size());
        assertSameGradients(b, ck.weights(), false);
        if (depth > 0) {
          assertOnlyBlockInputsRead(b);
        }
        assertEquals(depth, rebuiltBlocks(g).size(), rebuiltBlocks(g).toString());
      }
    }
  }

  /** The same for a LoRA ensemble's phase 2 (three members, dropout on), one block recomputed. */
  @Test
  void loraEnsembleWithItsLowestBlockRecomputed() throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(fixture("llama-seqcls"));
    ModelConfig c = ck.config();
    LoraConfig lora = LoraConfig.defaults(c).withDropout(0.1);
    try (Graph g = new Graph()) {
      Set<String> trainable = new HashSet<>();
      Built b =
          build(
              g,
              cx -> loraForward(cx, c, lora, trainable, false),
              trainable::contains,
              new Recompute(1));
      assertSameGradients(b, ck.weights(), true);
      assertOnlyBlockInputsRead(b);
      assertEquals(1, rebuiltBlocks(g).size(), rebuiltBlocks(g).toString());
    }
  }

  /** The distinct rebuilt block scopes ({@code recompute/.../blockN}) of a graph. */
  private static Set<String> rebuiltBlocks(Graph g) {
    Set<String> copies = new HashSet<>();
    for (Iterator<GraphOperation> it = g.operations(); it.hasNext(); ) {
      String name = it.next().name();
      if (name.startsWith(Recompute.SCOPE) && name.contains("/block")) {
        copies.add(name.substring(0, name.indexOf('/', name.indexOf("/block") + 1)));
      }
    }
    return copies;
  }

  @Test
  void loraEnsembleOfThreeMembersPhaseTwo() throws Exception {
    loraPhaseTwo(false);
  }

  /**
   * The same over a frozen trunk stored in bfloat16 (widened block by block, in the copies too).
   */
  @Test
  void loraEnsembleOverABfloat16Trunk() throws Exception {
    loraPhaseTwo(true);
  }

  /**
   * A K = 3 LoRA ensemble's phase-2 forward (seed 11); its trainable names go to {@code trainable}.
   */
  private static ForwardGraph loraForward(
      BuildContext cx, ModelConfig c, LoraConfig lora, Set<String> trainable, boolean bf16) {
    ParameterStore p = new ParameterStore(cx);
    java.util.List<String> adapted = LoraEnsembleGraph.trainableKeys(c, lora);
    if (bf16) {
      p.storeAs(
          k ->
              adapted.contains(k)
                  ? dev.rewardensemble.config.Precision.FLOAT32
                  : dev.rewardensemble.config.Precision.BFLOAT16);
    }
    LoraEnsembleGraph eg =
        LoraEnsembleGraph.training(cx, c, lora, 3, p, 11, RewardToken.LAST_NON_PAD);
    trainable.addAll(eg.trainableNames());
    return new ForwardGraph(eg.inputIds(), eg.attentionMask(), eg.rewards(), p, 3);
  }

  private static void loraPhaseTwo(boolean bf16) throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(fixture("llama-seqcls"));
    ModelConfig c = ck.config();
    // Adapters in the top blocks only (fork above block 0), dropout on: the copies must draw the
    // forward's masks.
    LoraConfig lora = LoraConfig.defaults(c).withDropout(0.1).withLoraLayers(c.numLayers() - 1);
    try (Graph g = new Graph()) {
      Set<String> trainable = new HashSet<>();
      Built b = build(g, cx -> loraForward(cx, c, lora, trainable, bf16), trainable::contains);
      assertSameGradients(b, ck.weights(), true);
      assertOnlyBlockInputsRead(b);
    }
  }

  @Test
  void gemma2AndQwen2AndGpt2FullFinetune() throws Exception {
    for (Path dir :
        List.of(family("gemma2-seqcls"), family("qwen2-seqcls"), fixture("gpt2-seqcls"))) {
      HfCheckpoint.Checkpoint ck = HfCheckpoint.load(dir);
      try (Graph g = new Graph()) {
        Built b = build(g, cx -> plainModel(cx, ck.config(), 2), n -> true);
        assertSameGradients(b, ck.weights(), false);
        assertOnlyBlockInputsRead(b);
      }
    }
  }

  /**
   * A causal LM whose head is the tied embedding (Gemma 2, soft-capped logits): the embedding's
   * gradient has a part from above the blocks and one from below them.
   */
  @Test
  void tiedEmbeddingsOfACausalLm() throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(family("gemma2-causal"));
    ModelConfig c = ck.config();
    assertTrue(c.tieWordEmbeddings());
    try (Graph g = new Graph()) {
      Built b =
          build(
              g,
              cx -> {
                Ops tf = cx.tf();
                ParameterStore p = new ParameterStore(cx);
                var ids = tf.placeholder(TInt32.class);
                var mask = tf.placeholder(TInt32.class);
                var geo = dev.rewardensemble.model.Attention.geometry(tf, mask);
                Operand<TFloat32> rows =
                    dev.rewardensemble.model.Transformers.trunk(cx, c, p, ids, geo, Projector.NONE);
                Operand<TFloat32> logits = dev.rewardensemble.model.LmHead.logits(cx, c, p, rows);
                Operand<TFloat32> lse =
                    tf.math.log(tf.reduceSum(tf.math.exp(logits), tf.constant(1))); // [B*T]
                Operand<TFloat32> perSeq =
                    tf.math.mean(
                        tf.reshape(lse, tf.stack(List.of(geo.batch(), geo.time()))),
                        tf.constant(1),
                        org.tensorflow.op.math.Mean.keepDims(true)); // [B, 1]
                return new ForwardGraph(ids, mask, perSeq, p, 1);
              },
              n -> true);
      assertSameGradients(b, ck.weights(), false);
      assertOnlyBlockInputsRead(b);
    }
  }

  @Test
  void independentMembersInOneGraph() throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(fixture("llama-seqcls"));
    Map<String, FloatTensor> weights = new LinkedHashMap<>();
    for (int m = 0; m < 2; m++) {
      for (Map.Entry<String, FloatTensor> e : ck.weights().entrySet()) {
        weights.put(
            dev.rewardensemble.ensemble.IndependentGraph.prefix(m) + e.getKey(), e.getValue());
      }
    }
    try (Graph g = new Graph()) {
      Built b =
          build(
              g,
              cx ->
                  dev.rewardensemble.ensemble.IndependentGraph.build(
                      cx, ck.config(), 2, new ParameterStore(cx), RewardToken.LAST_NON_PAD),
              n -> true);
      assertEquals(2 * ck.config().numLayers(), b.rec().size());
      assertSameGradients(b, weights, false);
      assertOnlyBlockInputsRead(b);
    }
  }

  @Test
  void frozenTrunkIsNeitherRebuiltNorDifferentiated() throws Exception {
    HfCheckpoint.Checkpoint ck = HfCheckpoint.load(fixture("llama-seqcls"));
    try (Graph g = new Graph()) {
      Built b =
          build(
              g,
              cx -> plainModel(cx, ck.config(), 2),
              n -> n.startsWith("score") || n.contains("layers." + (ck.config().numLayers() - 1)));
      assertSameGradients(b, ck.weights(), false);
      // Only the top block is rebuilt: nothing below it is trained.
      assertEquals(1, rebuiltBlocks(g).size(), rebuiltBlocks(g).toString());
    }
  }

  static ForwardGraph plainModel(BuildContext cx, ModelConfig c, int heads) {
    ParameterStore p = new ParameterStore(cx);
    RewardGraph rg = RewardGraph.build(cx, c, heads, p, Projector.NONE, RewardToken.LAST_NON_PAD);
    return rg.forward();
  }

  /**
   * Walks the ops the recomputed gradients need: none of those the gradients added reads an
   * internal activation of a forward block (an op between a block's input and its output that
   * depends on the input through float tensors), and every op of theirs that reads a block's input
   * waits (a control dependency) for an op of the backward pass. The same walk over {@code
   * tf.gradients}' ops finds internals read, so the walk can fail.
   */
  static void assertOnlyBlockInputsRead(Built b) {
    Set<String> internals = new HashSet<>();
    List<Output<TFloat32>> ins = b.rec().inputs();
    List<Output<TFloat32>> outs = b.rec().outputs();
    Set<String> inputOps = new HashSet<>();
    ins.forEach(o -> inputOps.add(o.op().name()));
    for (int i = 0; i < ins.size(); i++) {
      Set<String> above = floatConsumers((GraphOperation) ins.get(i).op());
      Set<String> below = producers((GraphOperation) outs.get(i).op(), ins.get(i).op().name());
      for (String n : above) {
        if (below.contains(n) && !n.equals(outs.get(i).op().name())) {
          internals.add(n);
        }
      }
    }
    assertFalse(internals.isEmpty());
    List<String> bad = violations(b, b.recomputed(), internals, inputOps, true);
    assertTrue(bad.isEmpty(), "recomputed gradients read block internals: " + bad);
    assertFalse(
        violations(b, b.plain(), internals, inputOps, false).isEmpty(),
        "tf.gradients reads no block internal: the walk cannot tell");
  }

  private static List<String> violations(
      Built b,
      List<Operand<TFloat32>> grads,
      Set<String> internals,
      Set<String> inputOps,
      boolean checkGates) {
    Set<String> needed = new HashSet<>();
    Deque<GraphOperation> todo = new ArrayDeque<>();
    grads.forEach(g -> todo.push((GraphOperation) g.op()));
    List<String> bad = new ArrayList<>();
    while (!todo.isEmpty()) {
      GraphOperation op = todo.pop();
      if (!needed.add(op.name()) || b.forwardOps().contains(op.name())) {
        continue;
      }
      boolean readsInput = false;
      for (Operand<?> in : op.inputs()) {
        String src = in.op().name();
        if (internals.contains(src)) {
          bad.add(op.name() + " <- " + src);
        }
        readsInput |= inputOps.contains(src);
        todo.push((GraphOperation) in.op());
      }
      boolean gated = false;
      for (GraphOperation c : op.controlInputs()) {
        gated |= !b.forwardOps().contains(c.name());
        todo.push(c);
      }
      if (checkGates && readsInput && !gated) {
        bad.add(op.name() + " reads a block input without waiting for the backward pass");
      }
    }
    return bad;
  }

  /** Ops that depend on {@code from}'s output through float tensors. */
  private static Set<String> floatConsumers(GraphOperation from) {
    Set<String> seen = new HashSet<>();
    Deque<GraphOperation> todo = new ArrayDeque<>(List.of(from));
    while (!todo.isEmpty()) {
      GraphOperation op = todo.pop();
      for (int j = 0; j < op.numOutputs(); j++) {
        if (op.output(j).dataType() != DataType.DT_FLOAT) {
          continue;
        }
        for (GraphOperation c : op.consumers(j)) {
          if (seen.add(c.name())) {
            todo.push(c);
          }
        }
      }
    }
    return seen;
  }

  /** Ops {@code to} reads, directly or not, without looking past the op named {@code stop}. */
  private static Set<String> producers(GraphOperation to, String stop) {
    Set<String> seen = new HashSet<>(List.of(to.name()));
    Deque<GraphOperation> todo = new ArrayDeque<>(List.of(to));
    while (!todo.isEmpty()) {
      for (Operand<?> in : todo.pop().inputs()) {
        String n = in.op().name();
        if (!n.equals(stop) && seen.add(n)) {
          todo.push((GraphOperation) in.op());
        }
      }
    }
    return seen;
  }

  static TInt32 ints(int[][] rows) {
    int[] flat = new int[rows.length * rows[0].length];
    for (int i = 0; i < rows.length; i++) {
      System.arraycopy(rows[i], 0, flat, i * rows[0].length, rows[0].length);
    }
    return TInt32.tensorOf(
        Shape.of(rows.length, rows[0].length), DataBuffers.of(flat, true, false));
  }

  static float[] floats(TFloat32 t) {
    float[] a = new float[Math.toIntExact(t.size())];
    t.asRawTensor().data().asFloats().read(a);
    return a;
  }
}
