/**
 * Training building blocks in graph mode (TensorFlow Java 1.1.0): the Bradley-Terry reward loss
 * ({@link dev.rewardensemble.train.BradleyTerry}), in-graph gradient accumulation and clipping
 * ({@link dev.rewardensemble.train.GradientAccumulator}), AdamW over an explicit variable list
 * ({@link dev.rewardensemble.train.AdamW}) and Java-side learning-rate schedules ({@link
 * dev.rewardensemble.train.Schedule}).
 *
 * <p>One optimizer step with {@code n} micro-batches:
 *
 * <pre>{@code
 * BradleyTerry.Loss loss = BradleyTerry.loss(tf, rChosen, rRejected, margin, 0f);       // rewards [B, K]
 * List<Operand<TFloat32>> grads = tf.gradients(loss.total(), reads) ...               // one per variable
 * GradientAccumulator acc = GradientAccumulator.build(tf, vars, grads, n, 1.0f);
 * AdamW opt = AdamW.build(tf, vars, acc.clipped(), AdamWConfig.withWeightDecay(0.1));
 * Op step = acc.resetAfter(tf, opt.update());
 * // per micro-batch: run(feeds, fetch loss.total(), target acc.accumulate())
 * // then:            run(feed opt.lr() = schedule.lr(s), opt.step() = s + 1,
 * //                      fetch acc.globalNorm(), acc.finite(), target step)
 * }</pre>
 *
 * <p>Gradients: in TF Java 1.1.0, {@code tf.gradients(loss, List.of(variable))} with a {@code
 * VariableV2} (the type {@code tf.variable(..)} returns) crashes the JVM (SIGSEGV in {@code
 * TF_AddGradientsWithPrefix}). Read each trainable variable once with {@code
 * tf.identity(variable)}, build the forward pass on that read, and differentiate with respect to
 * the reads; pass the variables themselves to the builders here.
 *
 * <p>Variables created here ({@code <var>/adam_m}, {@code <var>/adam_v}, {@code <var>/grad_accum})
 * are zero-initialised in the init scope: the first {@code Session.run} after they were added
 * initialises them, without re-initialising anything that already ran.
 */
package dev.rewardensemble.train;
