package dev.rewardensemble.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Path;

/**
 * Access to the Hugging Face reference fixtures copied into {@code src/test/resources/fixtures}.
 */
public final class Fixtures {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Fixtures() {}

  /** Directory of one fixture, e.g. {@code gpt2-seqcls}. */
  public static Path dir(String name) {
    try {
      return Path.of(Fixtures.class.getResource("/fixtures/" + name + "/expected.json").toURI())
          .getParent();
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  public static JsonNode expected(String name) throws IOException {
    return JSON.readTree(dir(name).resolve("expected.json").toFile());
  }

  public static int[][] ints2(JsonNode n) {
    int[][] out = new int[n.size()][];
    for (int i = 0; i < n.size(); i++) {
      out[i] = new int[n.get(i).size()];
      for (int j = 0; j < out[i].length; j++) {
        out[i][j] = n.get(i).get(j).asInt();
      }
    }
    return out;
  }

  public static float[] floats(JsonNode n) {
    float[] out = new float[n.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) n.get(i).asDouble();
    }
    return out;
  }

  /** Flattens a nested numeric array in row-major order. */
  public static float[] flat(JsonNode n) {
    java.util.List<Float> out = new java.util.ArrayList<>();
    flatten(n, out);
    float[] a = new float[out.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = out.get(i);
    }
    return a;
  }

  private static void flatten(JsonNode n, java.util.List<Float> out) {
    if (n.isArray()) {
      n.forEach(c -> flatten(c, out));
    } else {
      out.add((float) n.asDouble());
    }
  }

  public static int[] flatInts(int[][] a) {
    return java.util.Arrays.stream(a).flatMapToInt(java.util.Arrays::stream).toArray();
  }

  /** Asserts |a - e| <= rel * |e| + abs for every element. */
  public static void assertClose(
      float[] expected, float[] actual, double rel, double abs, String what) {
    assertEquals(expected.length, actual.length, what + ": length");
    for (int i = 0; i < expected.length; i++) {
      double tol = rel * Math.abs(expected[i]) + abs;
      assertTrue(
          Math.abs(expected[i] - actual[i]) <= tol,
          what + "[" + i + "]: expected " + expected[i] + ", got " + actual[i]);
    }
  }
}
