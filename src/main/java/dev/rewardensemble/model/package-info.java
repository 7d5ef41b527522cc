/**
 * Transformer graphs built with TensorFlow Java ops: one file per model family ({@link
 * dev.rewardensemble.model.Gpt2}, {@link dev.rewardensemble.model.Llama}), reward heads and the
 * language-model head.
 *
 * <p>Shape legend used in comments at every reshape and transpose:
 *
 * <ul>
 *   <li>B batch (sequences; for LoRA ensembles K*B once members diverge), T time (tokens)
 *   <li>H hidden size, N query heads, G query heads per key/value head, Nkv key/value heads, D head
 *       size, F MLP width, V vocabulary
 *   <li>K ensemble members (reward heads), R LoRA rank
 * </ul>
 *
 * <p>Inside a trunk, activations are kept as rows {@code [B*T, H]} so that every projection is one
 * 2-D MatMul; they are reshaped to {@code [B, T, N, D]} only for attention.
 *
 * <p>Builders take a {@link dev.rewardensemble.model.BuildContext}: the {@code Ops} to build with,
 * the precision of the weight products and whether the session compiles with XLA. It is passed
 * explicitly; no graph property is kept anywhere else. Overloads taking bare {@code Ops} build in
 * float32 without XLA (tests, export).
 *
 * <p>Model code knows nothing of files: weights arrive as named {@link
 * dev.rewardensemble.io.FloatTensor}s through a {@link dev.rewardensemble.model.ParameterStore}.
 */
package dev.rewardensemble.model;
