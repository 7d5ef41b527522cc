package dev.rewardensemble.eval;

import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.data.Padding;
import dev.rewardensemble.data.TokenBatch;
import dev.rewardensemble.io.FloatTensor;
import dev.rewardensemble.model.Attention;
import dev.rewardensemble.model.LmHead;
import dev.rewardensemble.model.ParameterStore;
import dev.rewardensemble.model.Projector;
import dev.rewardensemble.model.Transformers;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.ndarray.index.Indices;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * A deliberately simple temperature sampler for checking the world before the project's sampler is
 * merged: left-padded prompts, a full forward pass per new token (no KV cache), sampling in Java.
 */
final class SimpleSampler implements AutoCloseable {
  private final ModelConfig config;
  private final Graph graph = new Graph();
  private final Session session;
  private final Placeholder<TInt32> ids;
  private final Placeholder<TInt32> mask;
  private final Operand<TFloat32> lastLogits;

  /** A sampled response: ids after the prompt (EOS excluded) and whether EOS came. */
  record Sample(int[] response, boolean ended) {}

  SimpleSampler(ModelConfig config, Map<String, FloatTensor> weights, ExecConfig exec) {
    this.config = config;
    Ops tf = Ops.create(graph);
    ParameterStore p = new ParameterStore(tf);
    ids = tf.placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
    mask = tf.placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, -1)));
    Attention.Geometry g = Attention.geometry(tf, mask);
    Operand<TFloat32> rows = Transformers.trunk(tf, config, p, ids, g, Projector.NONE); // [B*T, H]
    Operand<TFloat32> logits = LmHead.logits(tf, config, p, rows); // [B*T, V]
    Operand<TFloat32> cube =
        tf.reshape(
            logits,
            tf.stack(List.of(g.batch(), g.time(), tf.constant(config.vocabSize())))); // [B, T, V]
    lastLogits = tf.stridedSlice(cube, Indices.all(), Indices.at(-1), Indices.all()); // [B, V]
    session = new Session(graph, exec.toProto());
    p.load(session, weights, false, "policy");
  }

  /** Samples one response per prompt at {@code temperature}, at most {@code maxNew} tokens. */
  List<Sample> sample(List<int[]> prompts, double temperature, int maxNew, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    List<Sample> out = new ArrayList<>();
    int chunk = 256;
    for (int from = 0; from < prompts.size(); from += chunk) {
      List<int[]> part = prompts.subList(from, Math.min(prompts.size(), from + chunk));
      out.addAll(sampleChunk(part, temperature, maxNew, rng));
    }
    return out;
  }

  /**
   * This sampler as the world's {@link PreferenceBuilder.ResponseSampler} (instructions in, texts
   * out).
   */
  PreferenceBuilder.ResponseSampler asResponseSampler(double temperature, int maxNew) {
    return (instructions, seed) -> {
      List<int[]> prompts = instructions.stream().map(World::promptIds).toList();
      return sample(prompts, temperature, maxNew, seed).stream()
          .map(x -> new PreferenceBuilder.Response(World.responseText(x.response()), x.ended()))
          .toList();
    };
  }

  private List<Sample> sampleChunk(
      List<int[]> prompts, double temperature, int maxNew, SplittableRandom rng) {
    int b = prompts.size();
    List<int[]> seqs = new ArrayList<>(prompts);
    int[][] resp = new int[b][maxNew];
    int[] len = new int[b];
    boolean[] done = new boolean[b];
    int v = config.vocabSize();
    for (int step = 0; step < maxNew; step++) {
      TokenBatch batch = Padding.leftPad(seqs, config.padTokenId());
      float[] logits = new float[b * v];
      try (TInt32 idT =
              TInt32.tensorOf(Shape.of(b, batch.time()), DataBuffers.of(batch.ids(), true, false));
          TInt32 mT =
              TInt32.tensorOf(
                  Shape.of(b, batch.time()), DataBuffers.of(batch.mask(), true, false));
          Result r = session.runner().feed(ids, idT).feed(mask, mT).fetch(lastLogits).run()) {
        ((TFloat32) r.get(0)).asRawTensor().data().asFloats().read(logits);
      }
      boolean all = true;
      for (int i = 0; i < b; i++) {
        if (done[i]) {
          continue;
        }
        int tok = draw(logits, i * v, v, temperature, rng);
        if (tok == config.eosTokenId()) {
          done[i] = true;
        } else {
          resp[i][len[i]++] = tok;
          int[] s = Arrays.copyOf(seqs.get(i), seqs.get(i).length + 1);
          s[s.length - 1] = tok;
          seqs.set(i, s);
          all = false;
        }
      }
      if (all) {
        break;
      }
    }
    List<Sample> out = new ArrayList<>(b);
    for (int i = 0; i < b; i++) {
      out.add(new Sample(Arrays.copyOf(resp[i], len[i]), done[i]));
    }
    return out;
  }

  private static int draw(
      float[] logits, int off, int v, double temperature, SplittableRandom rng) {
    double max = Double.NEGATIVE_INFINITY;
    for (int j = 0; j < v; j++) {
      max = Math.max(max, logits[off + j]);
    }
    double[] p = new double[v];
    double z = 0;
    for (int j = 0; j < v; j++) {
      p[j] = Math.exp((logits[off + j] - max) / temperature);
      z += p[j];
    }
    double u = rng.nextDouble() * z;
    for (int j = 0; j < v; j++) {
      u -= p[j];
      if (u <= 0) {
        return j;
      }
    }
    return v - 1;
  }

  @Override
  public void close() {
    session.close();
    graph.close();
  }
}
