package dev.rewardensemble.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.data.ChatTemplate;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.ScoreRow;
import dev.rewardensemble.data.ScoreRows;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.MemberScores;
import dev.rewardensemble.ensemble.Normalization;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.regex.Pattern;

/**
 * The two text protocols: OpenRLHF's remote reward model ({@code POST /get_reward}) and {@code rme
 * score}'s rows ({@code POST /v1/score}).
 */
final class TextProtocols {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;
  static final ObjectMapper JSON =
      new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private TextProtocols() {}

  /** Parsed {@code /v1/score} rows; {@code jsonl}: answer one row per line, else a JSON array. */
  record ScoreRequest(List<ScoreRow> rows, boolean jsonl) {}

  /**
   * What OpenRLHF's own reward server ({@code openrlhf/cli/serve_rm.py}, {@code
   * RewardModelProxy.get_reward}) does to a text query before tokenizing it: {@code
   * strip_sequence(query, pad_token, eos_token) + eos_token}, where {@code strip_sequence} removes
   * every run of EOS and pad tokens (as text) from the start ({@code re.sub("^(eos|pad)+", "",
   * text)}) and then from the end ({@code re.sub("(eos|pad)+$", "", text)}). The policy's decoded
   * sequences carry its padding and EOS in any number; after this every query ends in exactly one
   * EOS, which the reward model reads.
   *
   * <p>The tokens are the tokenizer's own ({@code eos_token} and {@code pad_token} of {@code
   * tokenizer_config.json}, else {@code special_tokens_map.json}, beside {@code tokenizer.json}),
   * not the model config's ids. Without a pad token the EOS is used for it (OpenRLHF's {@code
   * get_tokenizer} sets {@code pad_token = eos_token}). Without an EOS token (OpenRLHF fails there:
   * {@code re.escape(None)} raises) the pad token alone is stripped and nothing is appended; with
   * neither the query is tokenized as given. Like Python's {@code $}, the end pattern also matches
   * before one final {@code \n}.
   *
   * <p>Two deliberate differences, both about the tokenizer call: rme's tokenizer adds no special
   * tokens of the post-processor (transformers' default {@code add_special_tokens=True} puts e.g.
   * Llama's BOS in front, a second one when the decoded query starts with its own), and a query
   * longer than {@code --max-length} follows {@code --truncate} (a 400 by default; {@code left}
   * keeps the last tokens, so the appended EOS survives) where OpenRLHF's tokenizer cuts from the
   * right ({@code truncation=True, max_length=max_len}), dropping the EOS.
   *
   * @param pad the pad token's text, or null
   * @param eos the EOS token's text, or null
   */
  record QueryText(String pad, String eos) {
    /** The tokens of {@code tok}'s files; the pad token defaults to the EOS. */
    static QueryText of(Tokenizer tok) {
      Map<String, Object> special = ChatTemplate.specialTokens(tok.file());
      String eos = special.get("eos_token") instanceof String e && !e.isEmpty() ? e : null;
      String pad = special.get("pad_token") instanceof String p && !p.isEmpty() ? p : eos;
      return new QueryText(pad, eos);
    }

    /** {@code strip_sequence(query, pad, eos) + eos}. */
    String prepare(String query) {
      List<String> tokens = new ArrayList<>();
      if (eos != null) {
        tokens.add(Pattern.quote(eos));
      }
      if (pad != null) {
        tokens.add(Pattern.quote(pad));
      }
      if (tokens.isEmpty()) {
        return query;
      }
      String any = "(?:" + String.join("|", tokens) + ")+";
      String t = Pattern.compile("^" + any, Pattern.UNIX_LINES).matcher(query).replaceAll("");
      t = Pattern.compile(any + "$", Pattern.UNIX_LINES).matcher(t).replaceAll("");
      return eos == null ? t : t + eos;
    }
  }

  /**
   * {@code /get_reward}'s {@code query}: each a text (the whole sequence, e.g. the policy's prompt
   * and response as OpenRLHF decodes them), prepared as OpenRLHF's reward server does ({@link
   * QueryText}: pad and EOS tokens stripped from both ends, one EOS appended) and tokenized with
   * the model's tokenizer, or a conversation ({@code [{"role": .., "content": ..}, ..]}) rendered
   * with the checkpoint's chat template. {@code prompts} and {@code labels} are accepted and not
   * used.
   */
  static List<int[]> queries(JsonNode body, Encoder enc, QueryText qt) {
    if (body == null || !body.isObject()) {
      throw RequestError.bad("body: expected a JSON object, got " + Inputs.kind(body));
    }
    JsonNode q = Inputs.array(body.get("query"), "query");
    for (String f : List.of("prompts", "labels")) {
      JsonNode n = body.get(f);
      if (n != null && !n.isNull() && !n.isArray()) {
        throw RequestError.bad(f + ": expected an array, got " + Inputs.kind(n));
      }
    }
    List<int[]> out = new ArrayList<>(q.size());
    for (int i = 0; i < q.size(); i++) {
      String f = "query[" + i + "]";
      JsonNode e = q.get(i);
      if (e.isTextual()) {
        if (!enc.hasTokenizer()) {
          throw RequestError.bad(
              f + ": text needs a tokenizer, and the server has none (start it with --tokenizer)");
        }
        if (e.textValue().isEmpty()) {
          throw RequestError.bad(f + ": empty text");
        }
        try {
          out.add(enc.encodeIds(enc.tokenizer().encode(qt.prepare(e.textValue()))).ids());
        } catch (IllegalArgumentException x) {
          throw RequestError.bad(f + ": " + x.getMessage());
        }
      } else if (e.isArray()) {
        ObjectNode row = F.objectNode();
        row.set("messages", e);
        try {
          out.add(ScoreRows.parse(row, i + 1, enc, OptionalInt.empty()).ids());
        } catch (IllegalArgumentException x) {
          throw RequestError.bad(f + ": " + x.getMessage().replaceFirst("^messages: ", ""));
        }
      } else {
        throw RequestError.bad(
            f + ": expected a string or a list of messages, got " + Inputs.kind(e));
      }
    }
    return out;
  }

  /**
   * {@code {"rewards": [..], "scores": [..], "extra_logs": {"reward_std": [..], "members": [[..],
   * ..]}}}: {@code rewards} and {@code scores} the aggregated reward, {@code reward_std} the
   * members' population std (standardised when normalised), {@code members} the raw rewards.
   */
  static ObjectNode rewards(float[][] raw, Optional<Normalization> norm, AggregationConfig agg) {
    ObjectNode o = F.objectNode();
    ArrayNode rewards = o.putArray("rewards");
    ArrayNode scores = o.putArray("scores");
    ObjectNode logs = o.putObject("extra_logs");
    ArrayNode std = logs.putArray("reward_std");
    ArrayNode members = logs.putArray("members");
    for (float[] m : raw) {
      MemberScores s = MemberScores.of(m, m.length == 1 ? Optional.empty() : norm, agg);
      float r = m.length == 1 ? m[0] : (float) s.reward();
      rewards.add(r);
      scores.add(r);
      std.add((float) s.std());
      ArrayNode a = members.addArray();
      for (float v : m) {
        a.add(v);
      }
    }
    ScoreOutput.nullNonfinite(o);
    return o;
  }

  /**
   * {@code /v1/score}'s body: {@code rme score}'s input rows as JSONL (one per line, blank lines
   * skipped; {@code line} is the line in the body) or as a JSON array ({@code line} is the
   * element's position, from 1).
   */
  static ScoreRequest scoreRows(String body, Encoder enc, int vocab) {
    String trimmed = body.strip();
    if (trimmed.isEmpty()) {
      throw RequestError.bad("body: no rows");
    }
    List<ScoreRow> rows = new ArrayList<>();
    if (trimmed.startsWith("[")) {
      JsonNode arr = parse(trimmed, "body");
      for (int i = 0; i < arr.size(); i++) {
        rows.add(row(arr.get(i), i + 1, enc, vocab));
      }
      if (rows.isEmpty()) {
        throw RequestError.bad("body: no rows");
      }
      return new ScoreRequest(rows, false);
    }
    String[] lines = body.split("\r?\n", -1);
    for (int i = 0; i < lines.length; i++) {
      if (!lines[i].isBlank()) {
        rows.add(row(parse(lines[i], "line " + (i + 1)), i + 1, enc, vocab));
      }
    }
    return new ScoreRequest(rows, true);
  }

  private static ScoreRow row(JsonNode n, int line, Encoder enc, int vocab) {
    try {
      return ScoreRows.parse(n, line, enc, OptionalInt.of(vocab));
    } catch (IllegalArgumentException e) {
      throw RequestError.bad("line " + line + ": " + e.getMessage());
    }
  }

  static JsonNode parse(String text, String where) {
    try {
      return JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw RequestError.bad(
          where
              + ": invalid JSON at line "
              + e.getLocation().getLineNr()
              + ", column "
              + e.getLocation().getColumnNr()
              + ": "
              + e.getOriginalMessage());
    }
  }

  /** {@code rme score}'s output rows, in request order. */
  static List<JsonNode> scoreAnswer(
      List<ScoreRow> rows, float[][] raw, Optional<Normalization> norm, AggregationConfig agg) {
    List<JsonNode> out = new ArrayList<>(rows.size());
    for (int i = 0; i < rows.size(); i++) {
      out.add(
          ScoreOutput.nullNonfinite(
              ScoreOutput.row(rows.get(i), MemberScores.of(raw[i], norm, agg))));
    }
    return out;
  }
}
