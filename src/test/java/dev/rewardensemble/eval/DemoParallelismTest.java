package dev.rewardensemble.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.rl.GenerationLanes;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DemoParallelismTest {
  /** The first stage of {@link DemoParallelism#pipeline} alone: units with no follow-ups. */
  private static <T> List<T> map(DemoParallelism p, int n, DemoParallelism.Work<T> work)
      throws IOException {
    return p.<T, Void>pipeline(n, work, 0, i -> 0, (i, w) -> null).first();
  }

  private static void pause(long ms) throws IOException {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      throw new IOException(e);
    }
  }

  @Test
  void automaticJobsAreOnePerThreadOfTheBudgetOnlyWithOwnPools() {
    DemoParallelism p = DemoParallelism.of(0, 0, 2, true);
    assertEquals(2, p.jobs());
    assertEquals(1, p.threadsPerJob());
    assertEquals(1, p.exec().intraOpThreads());
    assertEquals(1, p.exec().interOpThreads(), "each job's sessions get an inter-op pool of one");

    DemoParallelism budget = DemoParallelism.of(3, 0, 16, true);
    assertEquals(3, budget.jobs(), "--threads is the budget, not the cores");
    assertEquals(1, budget.threadsPerJob());

    // Without own intra-op pools sessions share the process's: one job, as the demo always ran.
    DemoParallelism shared = DemoParallelism.of(0, 0, 8, false);
    assertEquals(1, shared.jobs());
    assertEquals(0, shared.exec().intraOpThreads());
    assertEquals(0, shared.exec().interOpThreads());
  }

  @Test
  void explicitJobsShareTheBudget() {
    DemoParallelism p = DemoParallelism.of(8, 2, 2, true);
    assertEquals(2, p.jobs());
    assertEquals(4, p.threadsPerJob());
    DemoParallelism more = DemoParallelism.of(2, 4, 2, true);
    assertEquals(4, more.jobs());
    assertEquals(1, more.threadsPerJob(), "at least one thread a job");
    DemoParallelism one = DemoParallelism.of(2, 1, 8, true);
    assertEquals(1, one.jobs());
    assertEquals(2, one.exec().intraOpThreads());
    assertTrue(one.describe().startsWith("one unit at a time"), one.describe());
    assertTrue(p.describe().startsWith("2 units at once, 4"), p.describe());
  }

  @Test
  void mapRunsUnitsAtOnceAndReturnsThemInIndexOrder() throws Exception {
    DemoParallelism p = DemoParallelism.of(2, 2, 2, true);
    CountDownLatch both = new CountDownLatch(2);
    Set<String> threads = ConcurrentHashMap.newKeySet();
    List<Integer> out =
        map(
            p,
            6,
            i -> {
              threads.add(Thread.currentThread().getName() + Thread.currentThread().getId());
              if (i < 2) {
                // the first two units wait for each other: they must run at the same time
                both.countDown();
                try {
                  assertTrue(both.await(10, TimeUnit.SECONDS), "two units at once");
                } catch (InterruptedException e) {
                  throw new IOException(e);
                }
              }
              if (i == 0) {
                pause(50); // finishes after unit 1: the order is still by index
              }
              return i * 10;
            });
    assertEquals(List.of(0, 10, 20, 30, 40, 50), out);
    assertEquals(2, threads.size());
  }

  @Test
  void afterAFailureNoFurtherUnitStartsAndTheFailureIsThrownAsItWas() {
    DemoParallelism p = DemoParallelism.of(2, 2, 2, true);
    AtomicInteger started = new AtomicInteger();
    IOException boom = new IOException("unit 1 failed");
    IOException thrown =
        assertThrows(
            IOException.class,
            () ->
                map(
                    p,
                    50,
                    i -> {
                      started.incrementAndGet();
                      if (i == 1) {
                        throw boom;
                      }
                      pause(20);
                      return i;
                    }));
    assertSame(boom, thrown);
    assertTrue(started.get() < 10, "units started after the failure: " + started.get());

    IllegalStateException ise =
        assertThrows(
            IllegalStateException.class,
            () ->
                map(
                    DemoParallelism.of(1, 1, 2, true),
                    3,
                    i -> {
                      throw new IllegalStateException("sequential " + i);
                    }));
    assertEquals("sequential 0", ise.getMessage());
  }

  @Test
  void aFollowUpStartsAsSoonAsItsWorldIsDoneWhileOtherWorldsStillRun() throws Exception {
    DemoParallelism p = DemoParallelism.of(2, 2, 2, true);
    CountDownLatch followUpOfWorld0 = new CountDownLatch(1);
    Set<Integer> worldsDone = ConcurrentHashMap.newKeySet();
    List<String> violations = new java.util.concurrent.CopyOnWriteArrayList<>();
    DemoParallelism.Stages<Integer, String> st =
        p.pipeline(
            3,
            w -> {
              if (w == 1) {
                // World 1 ends only once a follow-up of world 0 has started: with a barrier
                // between the stages (every world before any follow-up) this would time out.
                try {
                  if (!followUpOfWorld0.await(20, TimeUnit.SECONDS)) {
                    violations.add("no follow-up started while world 1 ran");
                  }
                } catch (InterruptedException e) {
                  throw new IOException(e);
                }
              }
              worldsDone.add(w);
              return 100 + w;
            },
            6,
            i -> i % 3,
            (i, world) -> {
              if (!worldsDone.contains(i % 3)) {
                violations.add("follow-up " + i + " started before world " + (i % 3));
              }
              if (i % 3 == 0) {
                followUpOfWorld0.countDown();
              }
              return i + ":" + world;
            });
    assertEquals(List.of(), violations);
    assertEquals(List.of(100, 101, 102), st.first());
    assertEquals(List.of("0:100", "1:101", "2:102", "3:100", "4:101", "5:102"), st.second());
  }

  @Test
  void oneJobRunsTheWorldsThenTheFollowUpsInIndexOrder() throws Exception {
    DemoParallelism one = DemoParallelism.of(2, 1, 2, true);
    List<String> order = new java.util.ArrayList<>();
    DemoParallelism.Stages<Integer, Integer> st =
        one.pipeline(
            2,
            w -> {
              order.add("w" + w);
              return w;
            },
            3,
            i -> 1 - i % 2,
            (i, w) -> {
              order.add("f" + i + "<w" + w);
              return i;
            });
    assertEquals(List.of("w0", "w1", "f0<w1", "f1<w0", "f2<w1"), order);
    assertEquals(List.of(0, 1, 2), st.second());
    assertThrows(
        IllegalArgumentException.class,
        () -> one.pipeline(2, w -> w, 1, i -> 2, (i, w) -> w),
        "a follow-up of a unit that does not exist");
  }

  @Test
  void aFailedWorldsFollowUpsNeverRunAndTheWorldsFailureIsThrown() {
    DemoParallelism p = DemoParallelism.of(2, 2, 2, true);
    IOException boom = new IOException("world 0 failed");
    Set<Integer> ran = ConcurrentHashMap.newKeySet();
    CountDownLatch world0Started = new CountDownLatch(1);
    IOException thrown =
        assertThrows(
            IOException.class,
            () ->
                p.pipeline(
                    2,
                    w -> {
                      if (w == 0) {
                        world0Started.countDown();
                        throw boom;
                      }
                      // World 1 (and so its failing follow-up) ends after world 0 has started: a
                      // unit that never started could not fail.
                      try {
                        assertTrue(world0Started.await(20, TimeUnit.SECONDS));
                      } catch (InterruptedException e) {
                        throw new IOException(e);
                      }
                      return w;
                    },
                    4,
                    i -> i % 2,
                    (i, w) -> {
                      ran.add(i);
                      if (i == 1) {
                        throw new IllegalStateException("a follow-up's failure comes after");
                      }
                      return i;
                    }));
    assertSame(boom, thrown);
    assertFalse(ran.contains(0) || ran.contains(2), "follow-ups of the failed world ran: " + ran);

    IllegalStateException second =
        assertThrows(
            IllegalStateException.class,
            () ->
                p.pipeline(
                    2,
                    w -> w,
                    4,
                    i -> i % 2,
                    (i, w) -> {
                      if (i >= 2) {
                        throw new IllegalStateException("follow-up " + i);
                      }
                      return i;
                    }));
    assertTrue(second.getMessage().startsWith("follow-up "), second.getMessage());
  }

  /**
   * Two worlds at once, one thread each, give exactly the numbers of one world at a time with one
   * thread: a unit's numbers depend on its own sessions only. (PPO runs go through the same {@link
   * DemoParallelism#pipeline}; a PPO phase here would triple the test's time.)
   */
  @Test
  void unitsRunningAtOnceGiveTheNumbersOfOneAtATime(@TempDir Path dir) throws Exception {
    assumeTrue(
        GenerationLanes.sessionsOwnPools(),
        "needs " + GenerationLanes.OWN_POOLS_ENV + "=true (the pom and ./rme set it)");
    DemoSettings.Builder b =
        DemoSettings.tiny(dir.resolve("x")).toBuilder()
            .sftSteps(40)
            .preferencePairs(24)
            .cleanPairs(8)
            .ppoIterations(0)
            .threads(2);
    assertEquals(2, b.build().worlds());
    DemoSettings atOnce = b.out(dir.resolve("at-once")).jobs(2).build();
    DemoSettings oneByOne = b.out(dir.resolve("one-by-one")).threads(1).jobs(1).build();
    assertEquals(2, Demo.jobs(atOnce));
    assertEquals(1, Demo.jobs(oneByOne));
    Demo.Result a = Demo.run(atOnce, msg -> System.err.println(msg));
    Demo.Result o = Demo.run(oneByOne, msg -> System.err.println(msg));
    for (String f : List.of("bon.csv", "bon_summary.csv", "rm_accuracy.csv", "paired.csv")) {
      assertEquals(
          Files.readString(o.report().resolveSibling(f)),
          Files.readString(a.report().resolveSibling(f)),
          f);
    }
    JsonNode ra = new ObjectMapper().readTree(a.results().toFile());
    JsonNode ro = new ObjectMapper().readTree(o.results().toFile());
    assertEquals(2, ra.get("jobs").asInt());
    assertEquals(1, ra.get("threads_per_job").asInt());
    assertEquals(1, ro.get("jobs").asInt());
    String md = Files.readString(a.report());
    assertTrue(md.contains("2 units at once, 1 intra-op thread(s) each"), md);
    assertTrue(md.contains("add up to more than the total"), md);
    assertFalse(Files.readString(o.report()).contains("add up to more than the total"));
  }
}
