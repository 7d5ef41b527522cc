package dev.rewardensemble.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.data.ScoreRow;
import dev.rewardensemble.ensemble.MemberScores;
import java.util.ArrayList;
import java.util.List;

/**
 * The output row of {@code rme score}, which {@code rme serve}'s {@code /v1/score} answers too:
 * {@code {"id": .., "line": N, "reward": r}}, and for an ensemble {@code "members"} (raw), {@code
 * "members_standardized"} (when normalised), {@code "mean"}, {@code "std"}.
 */
public final class ScoreOutput {
  private ScoreOutput() {}

  /** The output row of {@code row} scored as {@code s}. */
  public static ObjectNode row(ScoreRow row, MemberScores s) {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    if (row.original().has("id")) {
      o.set("id", row.original().get("id"));
    }
    o.put("line", row.line());
    if (s.members().length == 1) {
      o.put("reward", s.members()[0]);
      return o;
    }
    o.put("reward", (float) s.reward());
    ArrayNode m = o.putArray("members");
    for (float v : s.members()) {
      m.add(v);
    }
    if (s.standardized() != null) {
      ArrayNode z = o.putArray("members_standardized");
      for (float v : s.standardized()) {
        z.add(v);
      }
    }
    o.put("mean", (float) s.mean());
    o.put("std", (float) s.std());
    return o;
  }

  /**
   * Replaces NaN/Inf numbers (which Jackson writes as the strings "NaN", "Infinity") with null, in
   * place; returns {@code n}.
   */
  public static JsonNode nullNonfinite(JsonNode n) {
    if (n.isArray()) {
      ArrayNode a = (ArrayNode) n;
      for (int i = 0; i < a.size(); i++) {
        if (a.get(i).isNumber() && !Double.isFinite(a.get(i).asDouble())) {
          a.set(i, NullNode.instance);
        } else {
          nullNonfinite(a.get(i));
        }
      }
    } else if (n.isObject()) {
      ObjectNode o = (ObjectNode) n;
      List<String> names = new ArrayList<>();
      o.fieldNames().forEachRemaining(names::add);
      for (String k : names) {
        if (o.get(k).isNumber() && !Double.isFinite(o.get(k).asDouble())) {
          o.putNull(k);
        } else {
          nullNonfinite(o.get(k));
        }
      }
    }
    return n;
  }
}
