package dev.rewardensemble.config;

import static dev.rewardensemble.config.ModelConfig.check;

import java.util.List;
import java.util.Map;

/**
 * Gemma 2: embeddings scaled by sqrt(hidden), RMSNorm scaling by {@code (1 + weight)}, GeGLU with
 * the tanh-approximated GELU, four norms per block (sandwich), attention logits soft-capped ({@code
 * attn_logit_softcapping}) and scaled by {@code query_pre_attn_scalar^-0.5}, LM logits soft-capped
 * ({@code final_logit_softcapping}), sliding-window attention on alternate layers ({@code
 * layer_types}, by default layers 0, 2, 4, ...), tied embeddings. Field names follow Hugging Face's
 * {@code Gemma2Config}.
 *
 * @param queryPreAttnScalar attention scores are scaled by {@code queryPreAttnScalar^-0.5}
 * @param attnLogitSoftcapping cap of the attention logits (0: none)
 * @param finalLogitSoftcapping cap of the LM logits (0: none; never applied to reward heads)
 * @param windows per layer, the sliding attention window (0: full causal attention)
 * @param attnImplementation transformers' attention implementation, from the {@code
 *     attn_implementation} key ({@code sdpa} when absent, transformers' default): {@code sdpa} does
 *     not apply {@code attn_logit_softcapping} (transformers' scaled-dot-product path drops it),
 *     {@code eager}, {@code flash_attention_2} and {@code flex_attention} do ({@link
 *     #attentionSoftcap})
 */
public record Gemma2Config(
    int vocabSize,
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numKeyValueHeads,
    int headDim,
    int maxPositionEmbeddings,
    double rmsNormEps,
    double ropeTheta,
    int padTokenId,
    int bosTokenId,
    int eosTokenId,
    boolean tieWordEmbeddings,
    RopeScaling ropeScaling,
    double queryPreAttnScalar,
    double attnLogitSoftcapping,
    double finalLogitSoftcapping,
    List<Integer> windows,
    String attnImplementation)
    implements DecoderConfig {

  /** The {@code attn_implementation}s whose attention applies {@code attn_logit_softcapping}. */
  public static final List<String> SOFTCAPPING_ATTENTION =
      List.of("eager", "flash_attention_2", "flex_attention");

  /** transformers' default attention implementation, which drops the attention soft-capping. */
  public static final String SDPA = "sdpa";

  public Gemma2Config {
    DecoderKeys.check(
        vocabSize,
        hiddenSize,
        intermediateSize,
        numLayers,
        numHeads,
        numKeyValueHeads,
        headDim,
        maxPositionEmbeddings,
        rmsNormEps,
        ropeTheta,
        padTokenId);
    check(ropeScaling != null, "rope scaling must not be null");
    windows = DecoderKeys.checkWindows(windows, numLayers);
    check(
        queryPreAttnScalar > 0,
        "query_pre_attn_scalar must be positive, got " + queryPreAttnScalar);
    check(
        attnLogitSoftcapping >= 0,
        "attn_logit_softcapping must be positive or null, got " + attnLogitSoftcapping);
    check(
        finalLogitSoftcapping >= 0,
        "final_logit_softcapping must be positive or null, got " + finalLogitSoftcapping);
    check(
        attnImplementation != null
            && (attnImplementation.equals(SDPA)
                || SOFTCAPPING_ATTENTION.contains(attnImplementation)),
        "attn_implementation '"
            + attnImplementation
            + "' is not supported (sdpa, "
            + String.join(", ", SOFTCAPPING_ATTENTION)
            + ")");
  }

  /**
   * The cap the attention scores get, {@code cap * tanh(scores / cap)} before the mask: {@code
   * attn_logit_softcapping} under the implementations that apply it ({@link
   * #SOFTCAPPING_ATTENTION}); 0 under {@code sdpa}, transformers' default, whose attention drops it
   * (so a checkpoint scores here as {@code from_pretrained} scores it).
   */
  public double attentionSoftcap() {
    return SOFTCAPPING_ATTENTION.contains(attnImplementation) ? attnLogitSoftcapping : 0;
  }

  static Gemma2Config parse(HfKeys r) {
    int hidden = r.integer("hidden_size", null);
    int heads = r.integer("num_attention_heads", null);
    int vocab = r.integer("vocab_size", null);
    int eos = r.tokenId("eos_token_id", -1, vocab);
    int layers = r.integer("num_hidden_layers", null);
    ModelConfig.checkSize("num_hidden_layers", layers, MAX_LAYERS);
    String act = r.node().hasNonNull("hidden_activation") ? "hidden_activation" : "hidden_act";
    DecoderKeys.requireActivation(r, act, "gelu_pytorch_tanh");
    DecoderKeys.refuse(r, "attention_bias");
    DecoderKeys.refuse(r, "use_bidirectional_attention");
    int window = r.integer("sliding_window", 4096, 0);
    List<Boolean> dflt = new java.util.ArrayList<>();
    for (int i = 0; i < layers; i++) {
      dflt.add(window > 0 && (i + 1) % 2 == 1);
    }
    List<Boolean> sliding = r.slidingLayers(layers, dflt);
    return new Gemma2Config(
        vocab,
        hidden,
        r.integer("intermediate_size", null),
        layers,
        heads,
        r.integer("num_key_value_heads", heads),
        r.integer("head_dim", 256),
        r.integer("max_position_embeddings", null),
        r.number("rms_norm_eps", 1e-6),
        r.ropeTheta(10000.0),
        r.padTokenId(eos, vocab),
        r.tokenId("bos_token_id", -1, vocab),
        eos,
        r.bool("tie_word_embeddings", true),
        r.ropeScaling(),
        r.number("query_pre_attn_scalar", 256),
        r.number("attn_logit_softcapping", 50.0, 0),
        r.number("final_logit_softcapping", 30.0, 0),
        DecoderKeys.windows("layer_types", layers, sliding, window),
        r.text("attn_implementation", SDPA));
  }

  @Override
  public String modelType() {
    return "gemma2";
  }

  @Override
  public String hfClassPrefix() {
    return "Gemma2";
  }

  @Override
  public Map<String, long[]> parameterShapes() {
    return DecoderKeys.shapes(this, intermediateSize, false, false, true);
  }

  @Override
  public void writeHf(com.fasterxml.jackson.databind.node.ObjectNode o) {
    DecoderKeys.write(o, this, intermediateSize, rmsNormEps, ropeTheta, ropeScaling);
    o.put("hidden_activation", "gelu_pytorch_tanh");
    o.put("attention_bias", false);
    // transformers 5 validates it as an int: write 256, not 256.0, when it is whole.
    if (queryPreAttnScalar == Math.rint(queryPreAttnScalar) && queryPreAttnScalar < 1e9) {
      o.put("query_pre_attn_scalar", (long) queryPreAttnScalar);
    } else {
      o.put("query_pre_attn_scalar", queryPreAttnScalar);
    }
    putCap(o, "attn_logit_softcapping", attnLogitSoftcapping);
    putCap(o, "final_logit_softcapping", finalLogitSoftcapping);
    DecoderKeys.putWindow(o, windows);
    DecoderKeys.writeLayerTypes(o, windows);
    if (!attnImplementation.equals(SDPA)) {
      o.put("attn_implementation", attnImplementation);
    }
  }

  private static void putCap(
      com.fasterxml.jackson.databind.node.ObjectNode o, String key, double v) {
    if (v > 0) {
      o.put(key, v);
    } else {
      o.putNull(key);
    }
  }

  @Override
  public double finalLogitSoftcapping() {
    return finalLogitSoftcapping;
  }

  @Override
  public float initialNormWeight() {
    return 0f;
  }
}
