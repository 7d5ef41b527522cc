package dev.rewardensemble.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.train.MemberData;
import dev.rewardensemble.train.Schedule;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Which data the members train on, as --bootstrap and --member-data combine; rank lists. */
class EnsembleOptionsLeversTest {
  private static EnsembleOptions opts(EnsembleKind kind, int k, boolean bootstrap) {
    return new EnsembleOptions(
        kind,
        k,
        bootstrap,
        null,
        0.5,
        null,
        5e-5,
        Schedule.Kind.CONSTANT,
        AggregationConfig.mean(),
        true,
        2048);
  }

  @Test
  void bootstrapKeepsItsMeaningAndMemberDataAddsTheRest() {
    // --bootstrap: Poisson resamples of a single model's or a linear ensemble's one run, as before.
    assertEquals(MemberData.POISSON, opts(EnsembleKind.SINGLE, 1, true).membersData());
    assertEquals(MemberData.POISSON, opts(EnsembleKind.LINEAR, 3, true).membersData());
    // LoRA: --bootstrap stays phase 1's; phase 2 follows --member-data.
    assertEquals(MemberData.SHARED, opts(EnsembleKind.LORA, 3, true).membersData());
    assertEquals(
        MemberData.DISJOINT,
        opts(EnsembleKind.LORA, 3, true).withLevers(MemberData.DISJOINT, 0, 0).membersData());
    assertEquals(
        MemberData.BOOTSTRAP,
        opts(EnsembleKind.LINEAR, 3, false).withLevers(MemberData.BOOTSTRAP, 0, 0).membersData());
    assertThrows(
        IllegalArgumentException.class,
        () -> opts(EnsembleKind.LINEAR, 3, true).withLevers(MemberData.DISJOINT, 0, 0));
    assertThrows(
        IllegalArgumentException.class,
        () -> opts(EnsembleKind.INDEPENDENT, 3, false).withLevers(MemberData.BOOTSTRAP, 0, 0));
  }

  @Test
  void rankListsAreOnePerLoraMember() {
    EnsembleOptions lora = opts(EnsembleKind.LORA, 3, false);
    assertArrayEquals(new int[] {4, 8, 16}, lora.withLoraRanks(List.of(4, 8, 16)).memberRanks());
    assertNull(lora.withLoraRanks(List.of(8, 8, 8)).memberRanks(), "equal ranks: the plain path");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> lora.withLoraRanks(List.of(4, 8)));
    assertEquals(
        "--lora-rank gives 2 ranks for 3 members (--k): give one rank, or one per member",
        e.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> opts(EnsembleKind.LINEAR, 3, false).withLoraRanks(List.of(4, 8, 16)));
    assertThrows(
        IllegalArgumentException.class,
        () -> lora.withLoraRanks(List.of(4, 8, 16)).withLevers(MemberData.SHARED, 0, 0.1));
  }
}
