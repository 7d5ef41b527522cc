package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.api.EnsembleOptions;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.EnsembleKind;
import dev.rewardensemble.train.MemberData;
import dev.rewardensemble.train.Schedule;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The demo's lever rows: names, parsing of {@code --levers}, and the options each row trains. */
class DemoLeverTest {
  /** The options the demo's own linear-K and lora-K rows train with (RewardModelsPhase). */
  private static EnsembleOptions base(EnsembleKind kind, int k) {
    return new EnsembleOptions(
        kind,
        k,
        true,
        null,
        0.5,
        kind == EnsembleKind.LORA ? Path.of("noisy.json") : null,
        1e-3,
        Schedule.Kind.CONSTANT,
        AggregationConfig.mean(),
        true,
        2048);
  }

  private static EnsembleOptions applied(DemoLever l, int k) {
    DemoMethod m = l.method(k);
    return l.apply(base(l.kind(), m.k()), SftPolicy.config());
  }

  @Test
  void everyLeverChangesWhatItNamesAndNothingElse() {
    int k = 3;
    for (DemoLever l : DemoLever.values()) {
      EnsembleOptions b = base(l.kind(), l.method(k).k());
      EnsembleOptions o = applied(l, k);
      assertEquals(l.kind(), o.kind(), l.id());
      assertEquals(l.method(k).k(), o.k(), l.id());
      assertEquals(b.phase1Data(), o.phase1Data(), l.id());
      assertEquals(b.loraLr(), o.loraLr(), l.id());
      MemberData expectData =
          switch (l) {
            case LORA_BOOTSTRAP, LINEAR_BOOTSTRAP -> MemberData.BOOTSTRAP;
            case LORA_DISJOINT, LINEAR_DISJOINT -> MemberData.DISJOINT;
            default -> b.membersData();
          };
      assertEquals(expectData, o.membersData(), l.id());
      assertEquals(
          l == DemoLever.LORA_PRIOR || l == DemoLever.LINEAR_PRIOR ? DemoLever.PRIOR_SCALE : 0,
          o.priorScale(),
          l.id());
      assertEquals(
          l == DemoLever.LORA_DIVERSITY ? DemoLever.DIVERSITY_WEIGHT : 0,
          o.diversityWeight(),
          l.id());
      if (l == DemoLever.LORA_RANKS) {
        assertEquals(List.of(4, 8, 16), o.loraRanks());
        assertEquals(16, o.lora().rank());
      } else {
        assertNull(o.memberRanks(), l.id());
      }
      // Only the SWA row changes the training settings, and only their averaging.
      dev.rewardensemble.train.TrainConfig tc =
          dev.rewardensemble.train.TrainConfig.builder().lr(1e-3).epochs(2).build();
      assertEquals(
          l == DemoLever.LINEAR_SWA ? tc.toBuilder().swa(DemoLever.SWA_FRACTION).build() : tc,
          l.train(tc),
          l.id());
      // LoRA phase 1 keeps its Poisson heads in every LoRA row, as lora-K's.
      if (l.kind() == EnsembleKind.LORA) {
        assertTrue(o.bootstrap(), l.id());
      }
    }
    assertEquals(5, DemoLever.LINEAR_5.method(3).k());
    assertEquals(8, DemoLever.LORA_8.method(3).k());
    assertEquals("lora-3-disjoint", DemoLever.LORA_DISJOINT.rowName(3));
    assertEquals("linear-8", DemoLever.LINEAR_8.rowName(3));
    assertEquals("linear-3-swa", DemoLever.LINEAR_SWA.rowName(3));
    assertTrue(DemoLever.LINEAR_SWA.method(3).lever() == DemoLever.LINEAR_SWA);
  }

  @Test
  void onlyThePhaseTwoLeversReuseLoraPhaseOne() {
    Set<DemoLever> reuse = new HashSet<>();
    for (DemoLever l : DemoLever.values()) {
      if (l.reusesPhase1()) {
        reuse.add(l);
        assertEquals(EnsembleKind.LORA, l.kind());
        assertEquals(3, l.method(3).k(), "same K as the base, whose phase 1 it takes");
      }
    }
    assertEquals(
        Set.of(
            DemoLever.LORA_BOOTSTRAP,
            DemoLever.LORA_DISJOINT,
            DemoLever.LORA_RANKS,
            DemoLever.LORA_DIVERSITY),
        reuse);
    // The prior is in both phases: its row trains its own phase 1.
    assertFalse(DemoLever.LORA_PRIOR.reusesPhase1());
  }

  @Test
  void leversParseAndBadValuesNameTheChoices() {
    assertEquals(List.of(DemoLever.values()), DemoLever.parse("all"));
    assertEquals(DemoLever.FAST, DemoLever.parse("fast"));
    assertEquals(List.of(), DemoLever.parse("none"));
    assertEquals(
        List.of(DemoLever.LORA_RANKS, DemoLever.LINEAR_5),
        DemoLever.parse("lora-ranks, linear-5,lora-ranks"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> DemoLever.parse("lora-rank"));
    assertEquals(
        "--levers: unknown lever 'lora-rank' (choose from "
            + DemoLever.names()
            + ", or all, fast, none)",
        e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> DemoLever.parse("lora-5,"));
  }

  @Test
  void settingsAddALeverRowPerLeverAfterTheDemosOwn() {
    DemoSettings s =
        DemoSettings.tiny(Path.of("x")).toBuilder()
            .levers(List.of(DemoLever.LORA_DISJOINT, DemoLever.LINEAR_5))
            .build();
    List<DemoMethod> all = DemoMethod.all(s);
    List<DemoMethod> own = DemoMethod.all(s.k());
    assertEquals(own, all.subList(0, own.size()));
    assertEquals(
        List.of("lora-2-disjoint", "linear-5"),
        all.subList(own.size(), all.size()).stream().map(DemoMethod::name).toList());
    assertEquals(DemoLever.LORA_DISJOINT, all.get(own.size()).lever());
    assertEquals(
        "lora-2", LeverRows.phase1Source(all, all.get(own.size())).name(), "lora-2's phase 1");
    assertNull(LeverRows.phase1Source(all, all.get(own.size() + 1)));
    assertEquals(List.of(), DemoSettings.tiny(Path.of("x")).levers());
    assertEquals(DemoLever.FAST, DemoSettings.fast(Path.of("x")).levers());
    assertEquals(List.of(DemoLever.values()), DemoSettings.fullRun(Path.of("x")).levers());
    // A lever that would duplicate the demo's own row is refused.
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> s.toBuilder().k(5).levers(List.of(DemoLever.LORA_5)).build());
    assertEquals("demo: lever lora-5 is the demo's own lora-5 (k = 5)", e.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> s.toBuilder().levers(List.of(DemoLever.LORA_5, DemoLever.LORA_5)).build());
    // Lever rows run in PPO only when asked for, with the mean aggregation alone.
    for (MethodAgg r : PpoPhase.rewards(all, List.of())) {
      assertFalse(r.method().leverRow(), r.toString());
    }
    List<MethodAgg> withLever = PpoPhase.rewards(all, List.of(DemoLever.LINEAR_5));
    assertEquals(
        List.of("linear-5 mean"),
        withLever.stream()
            .filter(r -> r.method().leverRow())
            .map(r -> r.method().name() + " " + r.aggLabel())
            .toList());
    assertEquals(PpoPhase.rewards(all, List.of()).size() + 1, withLever.size());
    assertEquals(DemoLever.FAST, DemoSettings.fast(Path.of("x")).ppoLevers());
    assertEquals(DemoLever.PPO, DemoSettings.fullRun(Path.of("x")).ppoLevers());
  }
}
