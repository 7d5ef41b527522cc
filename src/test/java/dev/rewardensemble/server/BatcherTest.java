package dev.rewardensemble.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The batcher with a stand-in model that answers {@code [sum of attended ids, attended length]} per
 * row, so every answer can be checked against its own request whatever the batch it ran in.
 */
class BatcherTest {
  private static final int PAD = 0;

  /** One call of the model: its rows' lengths (attended tokens) and its padded width. */
  record Call(int b, int t, List<Integer> lengths) {}

  static final class Model implements Batcher.Scorer {
    final List<Call> calls = Collections.synchronizedList(new ArrayList<>());
    volatile CountDownLatch gate = new CountDownLatch(0);

    @Override
    public float[][] run(int[] ids, int[] mask, int b, int t) {
      try {
        gate.await(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
      float[][] out = new float[b][2];
      List<Integer> lengths = new ArrayList<>();
      for (int i = 0; i < b; i++) {
        int len = 0;
        for (int j = 0; j < t; j++) {
          if (mask[i * t + j] == 1) {
            if (ids[i * t + j] == 99) {
              throw new IllegalArgumentException("poison");
            }
            out[i][0] += ids[i * t + j];
            len++;
          } else {
            assertEquals(PAD, ids[i * t + j], "padding is the pad id");
          }
        }
        out[i][1] = len;
        lengths.add(len);
      }
      calls.add(new Call(b, t, lengths));
      return out;
    }
  }

  static Batcher.Row row(int... ids) {
    return new Batcher.Row(ids, null);
  }

  static ServerMetrics metrics() {
    return new ServerMetrics(() -> 0);
  }

  @Test
  void concurrentRequestsRunTogetherSortedByLengthAndGetTheirOwnRows() throws Exception {
    Model m = new Model();
    try (Batcher b = new Batcher(m, PAD, 4, 300, 100, metrics())) {
      List<CompletableFuture<float[][]>> fs = new ArrayList<>();
      int[] lens = {5, 1, 3, 7, 2, 6, 4, 8, 9, 3};
      for (int len : lens) {
        int[] ids = new int[len];
        java.util.Arrays.fill(ids, len);
        fs.add(b.submit(List.of(row(ids))));
      }
      for (int i = 0; i < lens.length; i++) {
        assertArrayEquals(new float[] {lens[i] * lens[i], lens[i]}, fs.get(i).get()[0]);
      }
      int total = 0;
      for (Call c : m.calls) {
        assertTrue(c.b() <= 4, c.toString());
        assertEquals(Collections.max(c.lengths()), c.t(), "padded to the batch's longest");
        List<Integer> sorted = new ArrayList<>(c.lengths());
        Collections.sort(sorted);
        assertEquals(sorted, c.lengths(), "grouped by length");
        total += c.b();
      }
      assertEquals(lens.length, total);
      assertTrue(m.calls.size() < lens.length, "requests were batched: " + m.calls);
    }
  }

  @Test
  void aRequestThatBreaksTheModelFailsAlone() throws Exception {
    Model m = new Model();
    try (Batcher b = new Batcher(m, PAD, 64, 300, 100, metrics())) {
      // all three arrive within the wait: one batch, which the poisoned row breaks
      CompletableFuture<float[][]> good = b.submit(List.of(row(3), row(4, 4)));
      CompletableFuture<float[][]> bad = b.submit(List.of(row(5, 99)));
      CompletableFuture<float[][]> good2 = b.submit(List.of(row(6)));
      assertArrayEquals(new float[] {3, 1}, good.get()[0]);
      assertArrayEquals(new float[] {8, 2}, good.get()[1]);
      assertArrayEquals(new float[] {6, 1}, good2.get()[0]);
      ExecutionException e = assertThrows(ExecutionException.class, bad::get);
      assertEquals("poison", e.getCause().getMessage());
      // the failed batch was run again request by request
      assertEquals(List.of(2, 1), m.calls.stream().map(Call::b).toList(), m.calls.toString());
    }
  }

  @Test
  void aFullQueueRefusesAtOnceAndEmptiesAgain() throws Exception {
    Model m = new Model();
    m.gate = new CountDownLatch(1);
    try (Batcher b = new Batcher(m, PAD, 8, 0, 3, metrics())) {
      CompletableFuture<float[][]> running = b.submit(List.of(row(1)));
      long end = System.nanoTime() + 5_000_000_000L;
      while (b.depth() != 0) { // taken by the batcher, held at the gate
        assertTrue(System.nanoTime() < end);
        Thread.sleep(5);
      }
      CompletableFuture<float[][]> queued = b.submit(List.of(row(2), row(3), row(4)));
      assertEquals(3, b.depth());
      RequestError full = assertThrows(RequestError.class, () -> b.submit(List.of(row(5))));
      assertEquals(503, full.status());
      RequestError big =
          assertThrows(RequestError.class, () -> b.submit(List.of(row(1), row(2), row(3), row(4))));
      assertEquals(413, big.status());
      m.gate.countDown();
      running.get();
      assertEquals(3, queued.get().length);
      assertEquals(0, b.depth());
      assertArrayEquals(new float[] {5, 1}, b.submit(List.of(row(5))).get()[0]);
    }
  }

  @Test
  void closeScoresWhatIsQueuedAndRefusesTheRest() throws Exception {
    Model m = new Model();
    Batcher b = new Batcher(m, PAD, 64, 10_000, 100, metrics());
    CompletableFuture<float[][]> a = b.submit(List.of(row(1)));
    CompletableFuture<float[][]> c = b.submit(List.of(row(2, 3)));
    b.close();
    assertArrayEquals(new float[] {1, 1}, a.get(1, TimeUnit.SECONDS)[0]);
    assertArrayEquals(new float[] {5, 2}, c.get(1, TimeUnit.SECONDS)[0]);
    assertEquals(503, assertThrows(RequestError.class, () -> b.submit(List.of(row(1)))).status());
  }
}
