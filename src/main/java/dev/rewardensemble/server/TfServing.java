package dev.rewardensemble.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.ensemble.Normalization;
import dev.rewardensemble.serving.SavedModels;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * TF Serving's REST API for the exported SavedModel's signature ({@link SavedModels#SIGNATURE}):
 * inputs {@code input_ids} and {@code attention_mask} (int32 {@code [B, T]}), outputs {@code
 * reward} {@code [B]} and, for K > 1, {@code members} {@code [B, K]} (raw), {@code mean}, {@code
 * std} (population) and {@code lcb} ({@code mean - beta * std}, beta of the aggregation, 0 unless
 * it is lcb) over the members standardised with the stored normalisation, as the SavedModel
 * computes them.
 *
 * <p>Requests: {@code {"instances": [{"input_ids": [..], "attention_mask": [..]}, ..]}} (row
 * format) or {@code {"inputs": {"input_ids": [[..], ..], "attention_mask": [[..], ..]}}}
 * (columnar); {@code attention_mask} may be left out (every token attended); rows may differ in
 * length (the server pads them). Answers: {@code {"predictions": [{"reward": r, "members": [..],
 * ..}, ..]}} and {@code {"outputs": {"reward": [..], "members": [[..], ..], ..}}}; with one output
 * (K = 1) its name is left out, as TF Serving does: {@code {"predictions": [r, ..]}}, {@code
 * {"outputs": [r, ..]}}.
 */
final class TfServing {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;
  private static final Set<String> INPUTS =
      Set.of(SavedModels.INPUT_IDS, SavedModels.ATTENTION_MASK);

  /** A parsed predict request. */
  record Predict(boolean columnar, List<Batcher.Row> rows) {}

  private TfServing() {}

  static Predict parse(JsonNode body, int vocab, int maxPositions) {
    if (body == null || !body.isObject()) {
      throw RequestError.bad("body: expected a JSON object, got " + Inputs.kind(body));
    }
    JsonNode sig = body.get("signature_name");
    if (sig != null
        && !sig.isNull()
        && !(sig.isTextual()
            && (sig.textValue().isEmpty() || sig.textValue().equals(SavedModels.SIGNATURE)))) {
      throw RequestError.bad(
          "signature_name: the model has one signature, '"
              + SavedModels.SIGNATURE
              + "', got "
              + sig);
    }
    for (Iterator<String> it = body.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!Set.of("signature_name", "instances", "inputs").contains(k)) {
        throw RequestError.bad(k + ": unknown key (expected instances or inputs)");
      }
    }
    boolean rows = body.has("instances");
    boolean cols = body.has("inputs");
    if (rows == cols) {
      throw RequestError.bad(
          "body: needs exactly one of \"instances\" (row format) or \"inputs\" (columnar)");
    }
    List<Batcher.Row> out = new ArrayList<>();
    if (rows) {
      JsonNode inst = Inputs.array(body.get("instances"), "instances");
      for (int i = 0; i < inst.size(); i++) {
        String f = "instances[" + i + "]";
        JsonNode e = inst.get(i);
        if (!e.isObject()) {
          throw RequestError.bad(
              f + ": expected an object with input_ids and attention_mask, got " + Inputs.kind(e));
        }
        unknownInputs(e, f);
        int[] ids = Inputs.ints(e.get(SavedModels.INPUT_IDS), f + ".input_ids");
        JsonNode m = e.get(SavedModels.ATTENTION_MASK);
        int[] mask = m == null || m.isNull() ? null : Inputs.ints(m, f + ".attention_mask");
        out.add(Inputs.row(ids, mask, f, vocab, maxPositions));
      }
    } else {
      JsonNode in = body.get("inputs");
      if (!in.isObject()) {
        throw RequestError.bad(
            "inputs: expected an object with input_ids and attention_mask, got " + Inputs.kind(in));
      }
      unknownInputs(in, "inputs");
      JsonNode ids = Inputs.array(in.get(SavedModels.INPUT_IDS), "inputs.input_ids");
      JsonNode masks = in.get(SavedModels.ATTENTION_MASK);
      if (masks != null && !masks.isNull()) {
        Inputs.array(masks, "inputs.attention_mask");
        if (masks.size() != ids.size()) {
          throw RequestError.bad(
              "inputs.attention_mask: "
                  + masks.size()
                  + " rows for "
                  + ids.size()
                  + " rows of input_ids");
        }
      }
      for (int i = 0; i < ids.size(); i++) {
        int[] row = Inputs.ints(ids.get(i), "inputs.input_ids[" + i + "]");
        int[] mask =
            masks == null || masks.isNull()
                ? null
                : Inputs.ints(masks.get(i), "inputs.attention_mask[" + i + "]");
        out.add(Inputs.row(row, mask, "inputs[" + i + "]", vocab, maxPositions));
      }
    }
    return new Predict(cols, out);
  }

  private static void unknownInputs(JsonNode o, String field) {
    for (Iterator<String> it = o.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!INPUTS.contains(k)) {
        throw RequestError.bad(
            field
                + "."
                + k
                + ": unknown input (the signature's inputs: input_ids, attention_mask)");
      }
    }
  }

  /** The signature's outputs for each row's raw member rewards. */
  static ObjectNode answer(
      boolean columnar, float[][] raw, Optional<Normalization> norm, AggregationConfig agg) {
    int k = raw.length == 0 ? 1 : raw[0].length;
    ObjectNode o = F.objectNode();
    if (k == 1) {
      ArrayNode r = o.putArray(columnar ? "outputs" : "predictions");
      for (float[] m : raw) {
        r.add(m[0]);
      }
      return o;
    }
    List<MemberScores> s = new ArrayList<>(raw.length);
    for (float[] m : raw) {
      s.add(MemberScores.of(m, norm, agg));
    }
    if (columnar) {
      ObjectNode out = o.putObject("outputs");
      ArrayNode reward = out.putArray(SavedModels.REWARD);
      ArrayNode members = out.putArray(SavedModels.MEMBERS);
      ArrayNode mean = out.putArray(SavedModels.MEAN);
      ArrayNode std = out.putArray(SavedModels.STD);
      ArrayNode lcb = out.putArray(SavedModels.LCB);
      for (MemberScores x : s) {
        reward.add((float) x.reward());
        ArrayNode m = members.addArray();
        for (float v : x.members()) {
          m.add(v);
        }
        mean.add((float) x.mean());
        std.add((float) x.std());
        lcb.add(lcb(x, agg));
      }
    } else {
      ArrayNode p = o.putArray("predictions");
      for (MemberScores x : s) {
        ObjectNode r = p.addObject();
        r.put(SavedModels.REWARD, (float) x.reward());
        ArrayNode m = r.putArray(SavedModels.MEMBERS);
        for (float v : x.members()) {
          m.add(v);
        }
        r.put(SavedModels.MEAN, (float) x.mean());
        r.put(SavedModels.STD, (float) x.std());
        r.put(SavedModels.LCB, lcb(x, agg));
      }
    }
    return o;
  }

  /** The SavedModel's {@code lcb}: {@code mean - beta * std} with the aggregation's beta. */
  private static float lcb(MemberScores x, AggregationConfig agg) {
    return (float) (x.mean() - agg.beta() * x.std());
  }

  /** {@code GET /v1/models/NAME[/versions/V]}: the one version, available. */
  static ObjectNode status(long version) {
    ObjectNode o = F.objectNode();
    ObjectNode v = o.putArray("model_version_status").addObject();
    v.put("version", Long.toString(version));
    v.put("state", "AVAILABLE");
    ObjectNode st = v.putObject("status");
    st.put("error_code", "OK");
    st.put("error_message", "");
    return o;
  }

  /** {@code GET /v1/models/NAME[/versions/V]/metadata}: the signature, as TF Serving shows it. */
  static ObjectNode metadata(String name, long version, int k) {
    ObjectNode o = F.objectNode();
    ObjectNode spec = o.putObject("model_spec");
    spec.put("name", name);
    spec.put("signature_name", "");
    spec.put("version", Long.toString(version));
    ObjectNode defs = o.putObject("metadata").putObject("signature_def").putObject("signature_def");
    ObjectNode sig = defs.putObject(SavedModels.SIGNATURE);
    ObjectNode inputs = sig.putObject("inputs");
    inputs.set(SavedModels.INPUT_IDS, tensor("DT_INT32", 2, SavedModels.INPUT_IDS));
    inputs.set(SavedModels.ATTENTION_MASK, tensor("DT_INT32", 2, SavedModels.ATTENTION_MASK));
    ObjectNode outputs = sig.putObject("outputs");
    outputs.set(SavedModels.REWARD, tensor("DT_FLOAT", 1, SavedModels.REWARD));
    if (k > 1) {
      outputs.set(SavedModels.MEMBERS, tensor("DT_FLOAT", 2, SavedModels.MEMBERS));
      outputs.set(SavedModels.MEAN, tensor("DT_FLOAT", 1, SavedModels.MEAN));
      outputs.set(SavedModels.STD, tensor("DT_FLOAT", 1, SavedModels.STD));
      outputs.set(SavedModels.LCB, tensor("DT_FLOAT", 1, SavedModels.LCB));
    }
    sig.put("method_name", SavedModels.METHOD);
    return o;
  }

  private static ObjectNode tensor(String dtype, int rank, String name) {
    ObjectNode t = F.objectNode();
    t.put("dtype", dtype);
    ObjectNode shape = t.putObject("tensor_shape");
    ArrayNode dims = shape.putArray("dim");
    for (int i = 0; i < rank; i++) {
      dims.addObject().put("size", "-1").put("name", "");
    }
    shape.put("unknown_rank", false);
    t.put("name", name + ":0");
    return t;
  }
}
