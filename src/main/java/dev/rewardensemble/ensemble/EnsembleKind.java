package dev.rewardensemble.ensemble;

/**
 * The paper's reward-model ensembles (Algorithm 1), with M trunk parameters, L head parameters and
 * A adapter parameters per member.
 */
public enum EnsembleKind {
  /** One reward model (K = 1): M + L parameters. */
  SINGLE,
  /** K full reward models trained with their own seeds: K(M + L). */
  INDEPENDENT,
  /** One shared trunk and K linear heads trained together: M + KL. */
  LINEAR,
  /**
   * A trunk finetuned as a linear ensemble, then frozen; K LoRA adapters and heads: M + KL + KA.
   */
  LORA;

  public static EnsembleKind byName(String name) {
    for (EnsembleKind k : values()) {
      if (k.name().equalsIgnoreCase(name)) {
        return k;
      }
    }
    throw new IllegalArgumentException(
        "ensemble kind '" + name + "' is not one of single, independent, linear, lora");
  }

  public String id() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
