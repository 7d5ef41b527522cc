/**
 * LoRA for reward-model ensembles: {@link dev.rewardensemble.lora.LoraConfig} (rank R, alpha,
 * dropout, targets, top blocks), {@link dev.rewardensemble.lora.StackedLora} (K adapters per
 * projection as {@code lora_A [K, in, R]} and {@code lora_B [K, R, out]}, applied as two batched
 * products to member-major rows {@code [K*B*T, in]}, never merged into the base weight) and {@link
 * dev.rewardensemble.lora.PeftAdapters} (K PEFT adapters stacked into that layout and back; the
 * adapter files themselves are read and written by {@link dev.rewardensemble.io.PeftFiles}).
 *
 * <p>Shape legend as in {@code dev.rewardensemble.model}: K members, B batch, T time, R rank.
 */
package dev.rewardensemble.lora;
