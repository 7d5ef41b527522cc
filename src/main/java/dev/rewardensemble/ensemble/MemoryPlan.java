package dev.rewardensemble.ensemble;

import dev.rewardensemble.config.AvailableMemory;
import dev.rewardensemble.config.ModelConfig;
import dev.rewardensemble.config.Precision;
import dev.rewardensemble.config.Recomputation;
import dev.rewardensemble.lora.LoraConfig;
import dev.rewardensemble.lora.StackedLora;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * How much memory a piece of work needs, part by part, computed from the configuration alone
 * (before any tensor exists): the weights by storage dtype, optimizer state, gradients, the KV
 * cache, the activations of one step and the runtime's fixed cost.
 *
 * <p>Parameter counts and the bytes of weights, AdamW moments, gradients and the KV cache are exact
 * (they are the tensors' sizes); activations are an estimate (what the backward pass keeps per
 * block, or the forward's working set of one block, times a constant calibrated on this machine,
 * see {@link #ACTIVATION_CALIBRATION}); the runtime cost is a measurement ({@link #RUNTIME_BYTES}).
 * Each {@link Part} says which it is.
 *
 * @param request what was planned
 * @param parts the parts, in the order they are printed
 */
public record MemoryPlan(Request request, List<Part> parts) {

  /** What the work does with the model. */
  public enum Mode {
    /** Forward only (rme score, eval's judge, export's graph). */
    SCORE,
    /** One Bradley-Terry training step (LoRA: phase 2; independent: one member at a time). */
    TRAIN,
    /** Sampling from the model as a causal LM with the preallocated KV cache. */
    GENERATE,
    /**
     * PPO: trained policy and value model (the reward model's shape), frozen reference and reward
     * model, a rollout's KV cache and one training step of policy and value.
     */
    PPO;

    public String id() {
      return name().toLowerCase(Locale.ROOT);
    }

    public static Mode byName(String s) {
      for (Mode m : values()) {
        if (m.id().equalsIgnoreCase(s)) {
          return m;
        }
      }
      throw new IllegalArgumentException(
          "--mode must be score, train, generate or ppo, got '" + s + "'");
    }
  }

  /** How a number was found. */
  public enum Basis {
    /** The tensors' sizes. */
    EXACT,
    /** Shapes times a calibrated constant. */
    ESTIMATE,
    /** A measured constant of this build. */
    MEASURED
  }

  /**
   * One part of a plan.
   *
   * @param name e.g. {@code frozen weights}
   * @param parameters the parameters (or, for caches and activations, float elements) it holds
   * @param bytes its bytes
   * @param basis exact, estimate or measured
   * @param detail how it was computed, e.g. {@code M x 2 bytes (bfloat16)}
   * @param host whether it lives in host memory whatever the device (the JVM and runtime, Java
   *     copies): a GPU's plan leaves it out
   */
  public record Part(
      String name, long parameters, long bytes, Basis basis, String detail, boolean host) {
    public Part {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(basis, "basis");
      if (parameters < 0 || bytes < 0) {
        throw new IllegalArgumentException(name + ": negative size");
      }
    }

    /** A part that lives on the device that runs the graph. */
    public Part(String name, long parameters, long bytes, Basis basis, String detail) {
      this(name, parameters, bytes, basis, detail, false);
    }
  }

  /**
   * What to plan.
   *
   * @param config architecture of the reward model (and, for generate and PPO, of the policy)
   * @param kind ensemble kind
   * @param k members (1 for single)
   * @param lora the adapters (LoRA ensembles only, else null)
   * @param mode the work
   * @param weightBytes bytes per frozen parameter: 4 (float32) or 2 (bfloat16); trained weights are
   *     always float32
   * @param batchSize sequences per batch (score, generate, PPO rollouts) or preference pairs per
   *     micro-batch (train: two sequences each)
   * @param length tokens per sequence (prompt tokens for generate and PPO); 0 = unknown: the
   *     length-dependent parts (KV cache prompt, activations) are left out and the plan says so
   * @param maxNewTokens tokens generated after the prompt (generate, PPO)
   * @param javaCopy whether loading holds every weight as a float32 Java array (the loading of this
   *     build; false with streaming loads)
   * @param recompute training (train and PPO: the policy's and value model's blocks) recomputes its
   *     blocks in the backward pass ({@code --recompute}): the activations of a step are every
   *     trained block's input plus one block's activations
   * @param compute the graphs' compute precision ({@code --compute}): with bfloat16 the activations
   *     inside the blocks of scoring and training are bfloat16 ({@link
   *     #BFLOAT16_ACTIVATION_FACTOR}); the residual stream (the block inputs that recomputation
   *     keeps) stays float32
   * @param hostedEmbedding 0, or the bytes per value (2: BF16, 4: F32) of a token embedding that a
   *     scoring graph reads from its checkpoint file's memory map instead of a variable ({@link
   *     EnsembleModel#rowsOnHost}): the plan then counts the pages of the rows a batch can read
   *     (host memory whatever the device), not the table
   */
  public record Request(
      ModelConfig config,
      EnsembleKind kind,
      int k,
      LoraConfig lora,
      Mode mode,
      int weightBytes,
      int batchSize,
      int length,
      int maxNewTokens,
      boolean javaCopy,
      Recomputation recompute,
      Precision compute,
      int hostedEmbedding) {
    public Request {
      if (hostedEmbedding != 0 && hostedEmbedding != 2 && hostedEmbedding != 4) {
        throw new IllegalArgumentException(
            "a hosted embedding is stored in 2 (BF16) or 4 (F32) bytes, got " + hostedEmbedding);
      }
      Objects.requireNonNull(compute, "compute");
      recompute = recompute == null ? Recomputation.NONE : recompute;
      Objects.requireNonNull(config, "config");
      Objects.requireNonNull(kind, "kind");
      Objects.requireNonNull(mode, "mode");
      EnsembleSpec.of(kind, k); // validates K for the kind
      if ((kind == EnsembleKind.LORA) != (lora != null)) {
        throw new IllegalArgumentException(
            "a LoRA plan needs the adapters' configuration, and only a LoRA plan has one");
      }
      if (lora != null) {
        lora.checkFor(config);
      }
      if (weightBytes != 2 && weightBytes != 4) {
        throw new IllegalArgumentException(
            "weight storage must be 4 (float32) or 2 (bfloat16) bytes, got " + weightBytes);
      }
      if (batchSize < 1) {
        throw new IllegalArgumentException("--batch-size must be >= 1, got " + batchSize);
      }
      if (length < 0 || length > config.maxPositions()) {
        throw new IllegalArgumentException(
            "--max-length must be in [1, "
                + config.maxPositions()
                + "] (the model's positions), got "
                + length);
      }
      if (maxNewTokens < 0) {
        throw new IllegalArgumentException("--max-new-tokens must be >= 0, got " + maxNewTokens);
      }
    }

    /** The embedding held in a variable ({@link #withHostedEmbedding}). */
    public Request(
        ModelConfig config,
        EnsembleKind kind,
        int k,
        LoraConfig lora,
        Mode mode,
        int weightBytes,
        int batchSize,
        int length,
        int maxNewTokens,
        boolean javaCopy,
        Recomputation recompute,
        Precision compute) {
      this(
          config,
          kind,
          k,
          lora,
          mode,
          weightBytes,
          batchSize,
          length,
          maxNewTokens,
          javaCopy,
          recompute,
          compute,
          0);
    }

    /** Without recomputation, in float32 compute ({@link #withRecompute}, {@link #withCompute}). */
    public Request(
        ModelConfig config,
        EnsembleKind kind,
        int k,
        LoraConfig lora,
        Mode mode,
        int weightBytes,
        int batchSize,
        int length,
        int maxNewTokens,
        boolean javaCopy) {
      this(
          config,
          kind,
          k,
          lora,
          mode,
          weightBytes,
          batchSize,
          length,
          maxNewTokens,
          javaCopy,
          Recomputation.NONE,
          Precision.FLOAT32);
    }

    /** Scoring with float32 weights, loaded through Java arrays: this build's default. */
    public static Request score(
        ModelConfig c, EnsembleKind kind, int k, LoraConfig lora, int batchSize, int length) {
      return new Request(c, kind, k, lora, Mode.SCORE, 4, batchSize, length, 0, true);
    }

    public Request withMode(Mode m) {
      return new Request(
          config,
          kind,
          k,
          lora,
          m,
          weightBytes,
          batchSize,
          length,
          maxNewTokens,
          javaCopy,
          recompute,
          compute,
          hostedEmbedding);
    }

    public Request withKind(EnsembleKind kd, int members, LoraConfig l) {
      return new Request(
          config,
          kd,
          members,
          l,
          mode,
          weightBytes,
          batchSize,
          length,
          maxNewTokens,
          javaCopy,
          recompute,
          compute,
          hostedEmbedding);
    }

    public Request withWeightBytes(int b) {
      return new Request(
          config,
          kind,
          k,
          lora,
          mode,
          b,
          batchSize,
          length,
          maxNewTokens,
          javaCopy,
          recompute,
          compute,
          hostedEmbedding);
    }

    public Request withJavaCopy(boolean copy) {
      return new Request(
          config,
          kind,
          k,
          lora,
          mode,
          weightBytes,
          batchSize,
          length,
          maxNewTokens,
          copy,
          recompute,
          compute,
          hostedEmbedding);
    }

    /** The same request with every block (or no block) recomputed in training. */
    public Request withRecompute(boolean r) {
      return withRecompute(Recomputation.of(r));
    }

    /** The same request with the blocks {@code r} covers recomputed in training. */
    public Request withRecompute(Recomputation r) {
      return new Request(
          config,
          kind,
          k,
          lora,
          mode,
          weightBytes,
          batchSize,
          length,
          maxNewTokens,
          javaCopy,
          r,
          compute,
          hostedEmbedding);
    }

    /** The same request in compute precision {@code p} ({@code --compute}). */
    public Request withCompute(Precision p) {
      return new Request(
          config,
          kind,
          k,
          lora,
          mode,
          weightBytes,
          batchSize,
          length,
          maxNewTokens,
          javaCopy,
          recompute,
          p,
          hostedEmbedding);
    }

    /**
     * The same request with a scoring graph's token embedding read from a {@code bytes}-per-value
     * file map (0: held in a variable).
     */
    public Request withHostedEmbedding(int bytes) {
      return new Request(
          config,
          kind,
          k,
          lora,
          mode,
          weightBytes,
          batchSize,
          length,
          maxNewTokens,
          javaCopy,
          recompute,
          compute,
          bytes);
    }
  }

  /**
   * Resident memory of the JVM plus TensorFlow's runtime with a tiny model loaded and scored:
   * {@code rme score} of examples/tiny-llama-rm, peak RSS 372,780 KiB under {@code /usr/bin/time
   * -v} (2-core AMD EPYC, TensorFlow Java 1.1.0, -Xmx8g). Used for score and generate.
   */
  public static final long RUNTIME_BYTES = 372_780L << 10;

  /**
   * The same for training: {@code rme train-rm} of one step of tf-graphs/tiny-llama.json, batch 1,
   * peak RSS 507,064 KiB (the gradient graph, AdamW and the run's bookkeeping). Used for train and
   * PPO.
   */
  public static final long TRAIN_RUNTIME_BYTES = 507_064L << 10;

  /**
   * What a training process over a frozen trunk (LoRA phase 2) holds beyond the plan's other parts,
   * as a fraction of the frozen trunk's bytes: {@code bench.ScaleProbe lora-train} of llama-7b
   * (bf16 trunk of 13.21 GB, K = 3, r = 8, every block recomputed, 1 pair x 128 tokens, {@code
   * --compute bfloat16}) peaked at 17.35 GB against the other parts' 16.16 GB: 1.19 GB, 0.09 of the
   * trunk (with the lowest 16 blocks recomputed: 21.07 GB against 19.52 GB + this term). Part of it
   * is the training graph's own native size (52,880 nodes and their executors); it was 0.19 before
   * loads collected the graph construction's Java garbage ({@code
   * ParameterStore.releaseBuildGarbage}), which was most of it.
   */
  public static final double FROZEN_TRAIN_OVERHEAD = 0.09;

  /**
   * Measured activation bytes over {@link #rawActivationFloats} x 4 of a training step: the slope
   * of peak RSS against batch size of one-step {@code rme train-rm} runs of bench-llama (128-token
   * pairs; batch 2, 8, 32: 897,756, 1,104,164, 1,900,176 KiB, i.e. 35.2 and 34.0 MB per pair) over
   * the formula's 41.2 MB per pair.
   */
  public static final double ACTIVATION_CALIBRATION = 0.84;

  /**
   * Bytes of the activations inside the blocks under bfloat16 compute over float32's, measured: the
   * slope of peak RSS against batch size of LoRA phase-2 steps ({@code bench.MemoryProbe
   * lora-step}, tf-graphs/bench-llama-wide.json, K = 1, 128-token pairs, batch 2 and 8) is 91.9 MiB
   * per pair with {@code --compute bfloat16} and 153.7 with float32. Not 0.5: softmax keeps its
   * float32 output for its gradient (as PyTorch's does) beside the bfloat16 probabilities, and the
   * norms read the float32 residual stream.
   */
  public static final double BFLOAT16_ACTIVATION_FACTOR = 0.60;

  /**
   * Bytes per trained parameter that a training process holds beyond its weights, moments and
   * gradients (Java-side copies of initial values and of what checkpoints and the final save read
   * back, the allocator's arenas): the gap between the plan and the measured peak RSS of a one-step
   * {@code rme train-rm} of bench-llama-wide (59.0M parameters, batch 2 x 128 tokens: 2,734,968 KiB
   * measured), about 10 bytes per parameter.
   */
  public static final int TRAINING_COPY_BYTES = 10;

  /** Stored floats per token and block, in units of the forward's shapes (see below). */
  static final int KEEP_HIDDEN = 9; // x, norm, q, rotated q, context (2 layouts), o, residual, norm

  static final int KEEP_KV = 3; // k, rotated k, v (each [B*T, Nkv*hd])
  static final int KEEP_MLP = 5; // gate, up, act(gate) and its sigmoid, gate*up
  static final int KEEP_SCORES = 3; // scores, masked scores, softmax (each [B, N, T, T])

  /** Trunk parameters M (exact: the family's checkpoint shapes). */
  public static long trunkParameters(ModelConfig c) {
    long m = 0;
    for (long[] s : c.parameterShapes().values()) {
      m += elements(s);
    }
    return m;
  }

  /** One member's adapter parameters A: {@code r (in + out)} per targeted projection. */
  public static long adapterParameters(ModelConfig c, LoraConfig lora) {
    if (lora == null) {
      return 0;
    }
    long a = 0;
    for (StackedLora.Module m : StackedLora.modules(c, lora)) {
      a += (long) lora.rank() * (m.in() + m.out());
    }
    return a;
  }

  /** The language-model head's own parameters (0 when tied to the embedding). */
  public static long lmHeadParameters(ModelConfig c) {
    return c.tieWordEmbeddings() ? 0 : (long) c.vocabSize() * c.hiddenSize();
  }

  private static long elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  /**
   * Floats one block keeps for the backward pass (or holds at once in a forward) for {@code seqs}
   * sequences of {@code t} tokens: {@value #KEEP_HIDDEN} x [B*T, H] + {@value #KEEP_KV} x [B*T,
   * Nkv*hd] + {@value #KEEP_MLP} x [B*T, F] + {@value #KEEP_SCORES} x [B, N, T, T].
   */
  public static long rawActivationFloats(ModelConfig c, long seqs, long t) {
    long tokens = seqs * t;
    long kv = (long) c.numKeyValueHeads() * c.headDim();
    long perToken = KEEP_HIDDEN * (long) c.hiddenSize() + KEEP_KV * kv + KEEP_MLP * mlpWidth(c);
    return tokens * perToken + KEEP_SCORES * seqs * c.numHeads() * t * t;
  }

  /** The MLP's inner width F. */
  public static long mlpWidth(ModelConfig c) {
    if (c instanceof dev.rewardensemble.config.DecoderConfig d) {
      return d.intermediateSize();
    }
    if (c instanceof dev.rewardensemble.config.Gpt2Config g) {
      return g.nInner();
    }
    throw new IllegalArgumentException("unknown family " + c.modelType());
  }

  /** Computes the plan. */
  public static MemoryPlan of(Request r) {
    ModelConfig c = r.config();
    long m = trunkParameters(c);
    long l = c.hiddenSize();
    long a = adapterParameters(c, r.lora());
    int k = r.k();
    String wb = r.weightBytes() == 2 ? "2 bytes (bfloat16)" : "4 bytes (float32)";
    List<Part> parts = new ArrayList<>();
    long trained = 0;
    long javaParams = 0;
    boolean lengthKnown = r.length() > 0;
    long t = r.length();
    switch (r.mode()) {
      case SCORE, TRAIN -> {
        boolean train = r.mode() == Mode.TRAIN;
        long trunks = r.kind() == EnsembleKind.INDEPENDENT ? (train ? 1 : k) : 1;
        long heads = r.kind() == EnsembleKind.INDEPENDENT && train ? 1 : k;
        boolean trunkTrained = train && r.kind() != EnsembleKind.LORA;
        boolean hosted = !train && r.hostedEmbedding() > 0;
        long table = (long) c.vocabSize() * c.hiddenSize();
        long frozenTrunk = trunkTrained ? 0 : trunks * (hosted ? m - table : m);
        if (frozenTrunk > 0) {
          parts.add(
              new Part(
                  "trunk weights (frozen)",
                  frozenTrunk,
                  frozenTrunk * r.weightBytes(),
                  Basis.EXACT,
                  (trunks > 1 ? trunks + " x " : "")
                      + (hosted ? "(M - V x H)" : "M")
                      + " x "
                      + wb));
          if (hosted) {
            parts.add(hostedRows(c, r, trunks));
          }
          if (train) {
            long over = (long) (frozenTrunk * r.weightBytes() * FROZEN_TRAIN_OVERHEAD);
            parts.add(
                new Part(
                    "training over a frozen trunk",
                    0,
                    over,
                    Basis.MEASURED,
                    "x" + FROZEN_TRAIN_OVERHEAD + " of the frozen trunk's bytes, measured at 7B",
                    true));
          }
        }
        long frozenSmall = train ? 0 : heads * l + k * a;
        if (!train) {
          parts.add(
              new Part("reward heads", heads * l, heads * l * 4, Basis.EXACT, heads + " x L x 4"));
          if (a > 0) {
            parts.add(
                new Part("LoRA adapters", k * a, k * a * 4, Basis.EXACT, k + " x A x 4 bytes"));
          }
        }
        if (train) {
          trained =
              switch (r.kind()) {
                case SINGLE, LINEAR -> m + k * l;
                case INDEPENDENT -> m + l; // members are trained one after another
                case LORA -> k * (a + l);
              };
          addTrained(parts, trained, trunkTrained ? "trunk + heads" : "adapters + heads");
        }
        javaParams = frozenTrunk + frozenSmall + trained;
        if (lengthKnown) {
          long seqs = train ? 2L * r.batchSize() : r.batchSize();
          long floats;
          long residual = 0; // of floats: the float32 residual stream (recomputation's inputs)
          String how;
          if (train) {
            // What the backward pass keeps: every block that has a trained weight above it.
            long blocks = c.numLayers();
            long copies = 1;
            long loraFloats = 0;
            if (r.kind() == EnsembleKind.LORA) {
              blocks = c.numLayers() - fork(r, c);
              copies = k; // the members run batched above the fork
              // each member's dropout copy of every targeted projection's input
              loraFloats = k * seqs * t * adapterInputs(c, r.lora());
            }
            // --recompute N: the lowest N blocks (of the whole stack) keep only their inputs.
            long rb = Math.max(0, Math.min(blocks, r.recompute().of(c.numLayers()) - fork(r, c)));
            long kept = blocks - rb;
            if (rb == 0) {
              floats =
                  copies * blocks * rawActivationFloats(c, seqs, t)
                      + rawActivationFloats(c, seqs, t) // the block being computed
                      + loraFloats;
              how =
                  (copies > 1 ? copies + " members x " : "")
                      + blocks
                      + " blocks x "
                      + seqs
                      + " sequences x "
                      + t
                      + " tokens";
            } else {
              // The kept blocks' activations at the end of the forward, or one recomputed
              // block's while its copy is differentiated (the kept ones are freed by then),
              // beside the recomputed blocks' inputs and one block being computed.
              floats =
                  blockInputFloats(c, copies, rb, seqs, t)
                      + copies * Math.max(kept, 1) * rawActivationFloats(c, seqs, t)
                      + rawActivationFloats(c, seqs, t)
                      + loraFloats * Math.max(kept, 1) / blocks;
              residual = blockInputFloats(c, copies, rb, seqs, t);
              how =
                  "inputs of "
                      + (copies > 1 ? copies + " members x " : "")
                      + rb
                      + " blocks + one block recomputed"
                      + (kept > 0
                          ? " + "
                              + (copies > 1 ? copies + " members x " : "")
                              + kept
                              + " blocks kept"
                          : "")
                      + " x "
                      + seqs
                      + " sequences x "
                      + t
                      + " tokens";
            }
          } else {
            long parallel =
                r.kind() == EnsembleKind.INDEPENDENT || r.kind() == EnsembleKind.LORA ? k : 1;
            floats = parallel * rawActivationFloats(c, seqs, t);
            how = parallel + " block(s) at once x " + seqs + " sequences x " + t + " tokens";
          }
          parts.add(
              activations(
                  floats,
                  residual,
                  train ? r.compute() : Precision.FLOAT32, // scoring: float32 (not measured)
                  how + (train ? " (one training step)" : " (forward)")));
        }
      }
      case GENERATE -> {
        long lm = lmHeadParameters(c);
        parts.add(
            new Part(
                "trunk + LM head weights (frozen)",
                m + lm,
                (m + lm) * r.weightBytes(),
                Basis.EXACT,
                "(M + V x H) x " + wb));
        javaParams = m + lm;
        parts.add(kvCache(c, r.batchSize(), t + r.maxNewTokens(), lengthKnown));
        if (lengthKnown) {
          parts.add(
              activations(
                  rawActivationFloats(c, r.batchSize(), t) + (long) r.batchSize() * c.vocabSize(),
                  "prefill of one block x " + r.batchSize() + " prompts x " + t + " tokens"));
        }
        long vocab = DECODE_VOCAB_TENSORS * r.batchSize() * c.vocabSize();
        parts.add(
            new Part(
                "decode steps' vocabulary tensors",
                vocab,
                vocab * 4,
                Basis.MEASURED,
                DECODE_VOCAB_TENSORS + " x " + r.batchSize() + " rows x V x 4 bytes"));
      }
      case PPO -> {
        long lm = lmHeadParameters(c);
        long rmTrunks = r.kind() == EnsembleKind.INDEPENDENT ? k : 1;
        long frozen = (m + lm) + rmTrunks * m;
        parts.add(
            new Part(
                "frozen weights (reference policy + reward model trunk)",
                frozen,
                frozen * r.weightBytes(),
                Basis.EXACT,
                "(M + V x H) + " + (rmTrunks > 1 ? rmTrunks + " x " : "") + "M, x " + wb));
        long rmSmall = k * (l + a);
        parts.add(
            new Part(
                "reward heads + adapters",
                rmSmall,
                rmSmall * 4,
                Basis.EXACT,
                k + " x (L + A) x 4 bytes"));
        trained = (m + lm) + (m + l);
        addTrained(parts, trained, "policy (M + V x H) + value model (M + L)");
        // Loaded once each: the policy (reference and policy start from its arrays) and the reward
        // model (the value model starts from its trunk).
        javaParams = frozen + rmSmall;
        long total = t + r.maxNewTokens();
        parts.add(kvCache(c, r.batchSize(), total, lengthKnown));
        if (total > 0 && r.recompute().any()) {
          // The inputs of both models' blocks, one block recomputed at a time.
          parts.add(
              activations(
                  recomputedActivationFloats(c, 1, 2L * c.numLayers(), r.batchSize(), total, 0)
                      + 2L * r.batchSize() * total * c.vocabSize(),
                  "policy and value: inputs of 2 x "
                      + c.numLayers()
                      + " blocks + one block recomputed x "
                      + r.batchSize()
                      + " sequences x "
                      + total
                      + " tokens (one training step) + logits"));
        } else if (total > 0) { // without a prompt length: over the new tokens only (lower bound)
          parts.add(
              activations(
                  2L * c.numLayers() * rawActivationFloats(c, r.batchSize(), total)
                      + 2L * r.batchSize() * total * c.vocabSize(),
                  "policy and value: 2 x "
                      + c.numLayers()
                      + " blocks x "
                      + r.batchSize()
                      + " sequences x "
                      + total
                      + " tokens (one training step) + logits"));
        }
      }
    }
    if (r.javaCopy()) {
      parts.add(
          new Part(
              "loading copy (float32 Java arrays)",
              javaParams,
              javaParams * 4,
              Basis.EXACT,
              "every weight passes through the Java heap as float32 while loading",
              true));
    }
    boolean training = r.mode() == Mode.TRAIN || r.mode() == Mode.PPO;
    parts.add(
        new Part(
            "runtime (JVM + TensorFlow)",
            0,
            training ? TRAIN_RUNTIME_BYTES : RUNTIME_BYTES,
            Basis.MEASURED,
            "fixed cost of this build, measured "
                + (training ? "training" : "scoring")
                + " a tiny model",
            true));
    return new MemoryPlan(r, List.copyOf(parts));
  }

  /**
   * The share of the available memory {@code --recompute auto} plans into. The plans of 7B steps
   * were 0-2% under the measured peaks (16.16 GiB planned for 16.16 measured with every block
   * recomputed, 19.29 for 19.62 with the lowest 16), and an over-full machine kills the process
   * rather than slowing it, so auto leaves a tenth free; the pre-check itself refuses only plans
   * above all of it.
   */
  public static final double AUTO_RECOMPUTE_SHARE = 0.90;

  /**
   * What {@code --recompute auto} plans into: {@link #AUTO_RECOMPUTE_SHARE} of {@code available}.
   */
  private static long autoBudget(long available) {
    return (long) (available * AUTO_RECOMPUTE_SHARE);
  }

  /**
   * The fewest lowest blocks a training step of {@code r} must recompute ({@code --recompute auto})
   * for its plan to fit in {@link #AUTO_RECOMPUTE_SHARE} of {@code available} bytes: {@link
   * Recomputation#NONE} if it fits as it is, {@link Recomputation#ALL} if only recomputing every
   * block does, null if not even that fits. Each recomputed block trades its activations for its
   * input and a second forward, so the fewest that fit is the fastest plan that fits. Graphs
   * without a backward pass: NONE.
   */
  public static Recomputation fewestRecomputed(Request r, long available) {
    if (r.mode() != Mode.TRAIN && r.mode() != Mode.PPO) {
      return Recomputation.NONE;
    }
    long budget = autoBudget(available);
    if (r.mode() == Mode.PPO) { // PPO recomputes all of its blocks or none
      return MemoryPlan.of(r.withRecompute(Recomputation.NONE)).total() <= budget
          ? Recomputation.NONE
          : MemoryPlan.of(r.withRecompute(Recomputation.ALL)).total() <= budget
              ? Recomputation.ALL
              : null;
    }
    return fewestRecomputed(
        r.config().numLayers(), x -> MemoryPlan.of(r.withRecompute(x)).total(), available);
  }

  /**
   * {@link #fewestRecomputed(Request, long)} over any plan's {@code total} as a function of the
   * recomputed blocks (e.g. a LoRA run's phases 1 and 2 together), for a stack of {@code layers}.
   */
  public static Recomputation fewestRecomputed(
      int layers, java.util.function.Function<Recomputation, Long> total, long available) {
    long budget = autoBudget(available);
    if (total.apply(Recomputation.NONE) <= budget) {
      return Recomputation.NONE;
    }
    if (total.apply(Recomputation.ALL) > budget) {
      return null;
    }
    int lo = 1; // the plan falls as blocks are recomputed: binary search for the fewest that fit
    int hi = layers;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (total.apply(Recomputation.lowest(mid)) <= budget) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo >= layers ? Recomputation.ALL : Recomputation.lowest(lo);
  }

  /** The lowest trained block of a LoRA plan (0 for the other kinds). */
  private static int fork(Request r, ModelConfig c) {
    return r.kind() == EnsembleKind.LORA ? r.lora().forkLayer(c) : 0;
  }

  /**
   * Activation floats of a training step that recomputes its blocks ({@code model.Recompute}): the
   * input rows {@code [seqs*t, H]} of each of the {@code blocks} trained blocks (of each of {@code
   * copies} members above a LoRA fork; the fork block's input once), plus one block's activations
   * while its copy is differentiated ({@code copies} x {@link #rawActivationFloats}), plus one
   * block's being computed (the forward's, or the copy's temporaries), plus that block's share of
   * the LoRA dropout copies {@code loraFloats} (of all blocks).
   */
  public static long recomputedActivationFloats(
      ModelConfig c, long copies, long blocks, long seqs, long t, long loraFloats) {
    if (blocks == 0) {
      return rawActivationFloats(c, seqs, t);
    }
    return blockInputFloats(c, copies, blocks, seqs, t)
        + copies * rawActivationFloats(c, seqs, t)
        + rawActivationFloats(c, seqs, t)
        + loraFloats / blocks;
  }

  /**
   * The block inputs a recomputing step keeps ({@link #recomputedActivationFloats}): {@code
   * [seqs*t, H]} per trained block (per member above a LoRA fork, the fork block's once); float32
   * in every compute precision.
   */
  static long blockInputFloats(ModelConfig c, long copies, long blocks, long seqs, long t) {
    if (blocks == 0) {
      return 0;
    }
    return (copies == 1 ? blocks : 1 + copies * (blocks - 1)) * seqs * t * c.hiddenSize();
  }

  /** Input floats per token of every targeted projection of one member (LoRA dropout copies). */
  private static long adapterInputs(ModelConfig c, LoraConfig lora) {
    if (lora.dropout() == 0) {
      return 0;
    }
    long n = 0;
    for (StackedLora.Module m : StackedLora.modules(c, lora)) {
      n += m.in();
    }
    return n;
  }

  /**
   * Float32 {@code [B, V]} tensors' worth of memory a generation's decode loop holds beyond the
   * weights, the KV cache and the prefill (logits, their widening, log-softmax, sampling; steps
   * overlap in the loop and the allocator keeps what they free), sized for sampling, which the plan
   * cannot tell from greedy decoding. Measured with the bench's bf16 memory model (V 128,256, width
   * 1024) as the growth of anonymous memory over its load after three generations less the plan's
   * other parts: top-p 0.9 sampling of the whole vocabulary (best-of-n's and PPO's) 10.3 MiB per
   * row at batch 32 (16 + 64 tokens); greedy 6.6 MiB there, 5.6 at batch 128 (after six
   * generations, where it levels off), 5.3 at batch 32 with 256 new tokens. A row of V floats is
   * 0.49 MiB. Since session 23 a row whose top-p nucleus lies among its 1,024 most likely tokens is
   * not sorted whole (peak RSS 60 MB lower at batch 32 there); the plan keeps the rows that are,
   * which a random model's flat logits make every row (measured as before).
   */
  public static final long DECODE_VOCAB_TENSORS = 21;

  /** Bytes of a page of a file map. */
  static final long PAGE_BYTES = 4096;

  /**
   * The token embedding of a scoring graph read from its checkpoint's memory map ({@link
   * Request#hostedEmbedding}): the pages of the rows one batch can read, each row counted with a
   * page more than its bytes (a row need not start on a page), at most the table. Rows read by
   * earlier batches stay mapped, but as clean pages of a file the kernel reclaims them under
   * pressure, as it does a PyTorch process's map of the same file.
   */
  private static Part hostedRows(ModelConfig c, Request r, long trunks) {
    long tokens = (long) r.batchSize() * (r.length() > 0 ? r.length() : c.maxPositions());
    long rows = Math.min(c.vocabSize(), tokens);
    long rowBytes = (long) c.hiddenSize() * r.hostedEmbedding();
    long perRow = ((rowBytes + PAGE_BYTES - 1) / PAGE_BYTES + 1) * PAGE_BYTES;
    long bytes = trunks * Math.min(c.vocabSize() * rowBytes, rows * perRow);
    return new Part(
        "embedding rows (file map)",
        trunks * rows * c.hiddenSize(),
        bytes,
        Basis.ESTIMATE,
        (trunks > 1 ? trunks + " x " : "")
            + rows
            + " rows of a batch x (H x "
            + r.hostedEmbedding()
            + " bytes + a page), at most V x H",
        true);
  }

  private static void addTrained(List<Part> parts, long trained, String what) {
    parts.add(
        new Part(
            "trained weights (float32)", trained, trained * 4, Basis.EXACT, what + " x 4 bytes"));
    parts.add(
        new Part(
            "AdamW moments", 2 * trained, trained * 8, Basis.EXACT, "2 x float32 per trained"));
    parts.add(
        new Part(
            "gradients",
            2 * trained,
            trained * 8,
            Basis.EXACT,
            "accumulator + one micro-batch's, float32"));
    parts.add(
        new Part(
            "training copies (Java side, allocator)",
            0,
            trained * TRAINING_COPY_BYTES,
            Basis.ESTIMATE,
            TRAINING_COPY_BYTES + " bytes per trained parameter, measured",
            true));
  }

  private static Part kvCache(ModelConfig c, int batch, long positions, boolean lengthKnown) {
    long floats =
        2L * c.numLayers() * batch * c.numKeyValueHeads() * positions * (long) c.headDim();
    return new Part(
        "KV cache",
        floats,
        floats * 4,
        Basis.EXACT,
        "2 x "
            + c.numLayers()
            + " layers x "
            + batch
            + " x "
            + c.numKeyValueHeads()
            + " heads x "
            + positions
            + " positions"
            + (lengthKnown ? "" : " (new tokens only: prompt length unknown)")
            + " x "
            + c.headDim()
            + " x 4 bytes");
  }

  private static Part activations(long floats, String how) {
    return activations(floats, floats, Precision.FLOAT32, how);
  }

  /**
   * Activations of {@code floats} elements, of which {@code float32} are float32 in every precision
   * (the residual stream) and the rest are the blocks' insides, bfloat16 under bfloat16 compute
   * ({@link #BFLOAT16_ACTIVATION_FACTOR}).
   */
  private static Part activations(long floats, long float32, Precision compute, String how) {
    if (compute == Precision.FLOAT32) {
      return new Part(
          "activations",
          floats,
          (long) (floats * 4.0 * ACTIVATION_CALIBRATION),
          Basis.ESTIMATE,
          how + ", float32, calibrated x" + ACTIVATION_CALIBRATION);
    }
    double inside = (floats - float32) * BFLOAT16_ACTIVATION_FACTOR;
    return new Part(
        "activations",
        floats,
        (long) ((float32 + inside) * 4.0 * ACTIVATION_CALIBRATION),
        Basis.ESTIMATE,
        how
            + ", bfloat16 compute: blocks' insides x"
            + BFLOAT16_ACTIVATION_FACTOR
            + (float32 > 0 ? ", block inputs float32" : "")
            + ", calibrated x"
            + ACTIVATION_CALIBRATION);
  }

  /**
   * This plan and {@code other} in one process (e.g. a policy sampling and a reward model scoring):
   * {@code other}'s parts named with {@code prefix}, its runtime cost left out (one process has
   * one).
   */
  public MemoryPlan with(String prefix, MemoryPlan other) {
    List<Part> all = new ArrayList<>(parts);
    for (Part p : other.parts()) {
      if (p.basis() != Basis.MEASURED) {
        all.add(
            new Part(
                prefix + ": " + p.name(),
                p.parameters(),
                p.bytes(),
                p.basis(),
                p.detail(),
                p.host()));
      }
    }
    return new MemoryPlan(request, List.copyOf(all));
  }

  /** Bytes of the parts on the device that runs the graph (a GPU's share of the plan). */
  public long deviceTotal() {
    return parts.stream().filter(p -> !p.host()).mapToLong(Part::bytes).sum();
  }

  /** Bytes of every part. */
  public long total() {
    return parts.stream().mapToLong(Part::bytes).sum();
  }

  /** The part named {@code name}, 0 if absent. */
  public long bytes(String name) {
    return parts.stream().filter(p -> p.name().equals(name)).mapToLong(Part::bytes).sum();
  }

  /** Whether the length-dependent parts are included. */
  public boolean lengthKnown() {
    return request.length() > 0;
  }

  /** The plan as an aligned table, one part a line, then the total. */
  public String table() {
    StringBuilder sb = new StringBuilder();
    for (Part p : parts) {
      sb.append(
          String.format(
              Locale.ROOT,
              "  %-40s %16s  %10s  %-8s %s%n",
              p.name(),
              p.parameters() == 0 ? "" : String.format(Locale.ROOT, "%,d", p.parameters()),
              AvailableMemory.size(p.bytes()),
              p.basis().name().toLowerCase(Locale.ROOT),
              p.detail()));
    }
    sb.append(
        String.format(
            Locale.ROOT,
            "  %-40s %16s  %10s%s%n",
            "total",
            "",
            AvailableMemory.size(total()),
            lengthKnown() ? "" : "  (no length given: activations not included)"));
    return sb.toString();
  }

  /**
   * Refuses a plan larger than {@code available}: one line with the numbers and what to change.
   *
   * @param what the work, e.g. {@code rme score of DIR}
   */
  public void require(AvailableMemory available, String what) {
    require(available, what, null);
  }

  /**
   * {@link #require(AvailableMemory, String)} with {@code advice} (null: none) given first, before
   * what the plan itself suggests; a training plan of a whole trunk suggests a LoRA ensemble only
   * without it.
   */
  public void require(AvailableMemory available, String what, String advice0) {
    long need = total();
    if (need <= available.bytes()) {
      return;
    }
    List<String> advice = new ArrayList<>();
    if (advice0 != null) {
      advice.add(advice0);
    }
    long frozen = 0;
    for (Part p : parts) {
      if (p.name().contains("(frozen)") || p.name().contains("frozen weights")) {
        frozen += p.bytes();
      }
    }
    if (request.weightBytes() == 4 && frozen > 0) {
      advice.add("--weights bfloat16 (saves " + AvailableMemory.size(frozen / 2.0) + ")");
    }
    long act =
        parts.stream()
            .filter(p -> p.name().endsWith("activations") || p.name().endsWith("KV cache"))
            .mapToLong(Part::bytes)
            .sum();
    if (!request.recompute().equals(Recomputation.ALL)
        && ((request.mode() == Mode.TRAIN && request.length() > 0)
            || (request.mode() == Mode.PPO && request.length() + request.maxNewTokens() > 0))) {
      // Recomputation keeps one block's activations instead of every recomputed block's.
      long with = MemoryPlan.of(request.withRecompute(true)).bytes("activations");
      long without = bytes("activations");
      if (with < without) {
        String r =
            "--recompute (activations " + gib(without) + " -> " + gib(with) + ", same gradients)";
        Recomputation fewest = fewestRecomputed(request, available.bytes());
        if (request.mode() == Mode.TRAIN && fewest != null && fewest.any() && !fewest.all()) {
          long part = MemoryPlan.of(request.withRecompute(fewest)).bytes("activations");
          advice.add(
              0,
              "--recompute auto (recomputes the lowest "
                  + fewest.blocks()
                  + " blocks: activations "
                  + gib(without)
                  + " -> "
                  + gib(part)
                  + ", same gradients, less time than --recompute)");
        }
        if (need - (without - with) <= available.bytes()) {
          advice.add(advice.isEmpty() || fewest == null ? 0 : 1, r); // enough on its own
        } else {
          advice.add(r);
        }
      }
    }
    if (act > 0) {
      advice.add(
          "a smaller --batch-size or --max-length (activations and caches " + gib(act) + ")");
    }
    if (request.kind() == EnsembleKind.LORA
        && request.mode() == Mode.TRAIN
        && request.lora().loraLayers() == 0) {
      advice.add("--lora-layers N (adapters in the top N blocks only)");
    }
    if (request.mode() == Mode.TRAIN && request.kind() != EnsembleKind.LORA && advice0 == null) {
      advice.add("a LoRA ensemble (--ensemble lora) to train adapters instead of the trunk");
    }
    if (advice.isEmpty()) {
      advice.add("a smaller model");
    }
    StringBuilder top = new StringBuilder();
    parts.stream()
        .sorted((x, y) -> Long.compare(y.bytes(), x.bytes()))
        .limit(4)
        .forEach(
            p ->
                top.append(top.length() == 0 ? "" : ", ")
                    .append(p.name())
                    .append(' ')
                    .append(gib(p.bytes())));
    throw new IllegalArgumentException(
        what
            + " needs about "
            + gib(need)
            + " ("
            + top
            + ") but "
            + gib(available.bytes())
            + " is available ("
            + available.source()
            + "); try "
            + String.join(", ", advice)
            + " (rme info --model .. --mode "
            + request.mode().id()
            + " prints the plan; the model: "
            + request.config().sizeKeys()
            + ")");
  }

  private static String gib(long b) {
    return AvailableMemory.size(b);
  }
}
