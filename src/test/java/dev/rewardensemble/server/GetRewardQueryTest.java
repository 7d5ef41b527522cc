package dev.rewardensemble.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.testing.Cli;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code POST /get_reward} prepares text queries as OpenRLHF's {@code serve_rm.py} does. */
class GetRewardQueryTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  /** {@code rme score}'s output lines for {@code rows} on {@code model}. */
  private List<JsonNode> rmeScore(Path model, Path tokDir, List<String> rows) throws Exception {
    Path in = tmp.resolve("rows.jsonl");
    Path out = tmp.resolve("out.jsonl");
    Files.write(in, rows);
    Cli.Run r =
        Cli.rme(
            "score",
            "--model",
            model.toString(),
            "--tokenizer",
            tokDir.resolve("tokenizer.json").toString(),
            "--data",
            in.toString(),
            "--out",
            out.toString());
    assertEquals(0, r.code(), r.err());
    List<JsonNode> lines = new ArrayList<>();
    for (String l : Files.readAllLines(out)) {
      lines.add(JSON.readTree(l));
    }
    return lines;
  }

  /**
   * OpenRLHF's remote reward model strips pad and EOS tokens from both ends of a query and appends
   * one EOS ({@code strip_sequence(query, pad, eos) + eos}): queries with any number of trailing
   * (or leading) pad/EOS tokens, and one with none, all get {@code rme score}'s reward of the
   * stripped text + EOS, with the tokenizer's own pad token ({@code <pad>}) and EOS ({@code </s>}).
   */
  @Test
  void getRewardStripsPadAndEosAndAppendsOneEosAsOpenRlhf() throws Exception {
    ServeModels models = new ServeModels(tmp);
    Path dir = tmp.resolve("tok-pad");
    Files.createDirectories(dir);
    Files.copy(models.tokDir.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
    Files.writeString(
        dir.resolve("tokenizer_config.json"),
        "{\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\"},"
            + " \"pad_token\": \"<pad>\"}");
    String text = "Human: What is 2+2? Assistant: 4";
    List<String> queries =
        List.of(
            text,
            text + "</s>",
            text + "</s><pad><pad>",
            "<pad><pad>" + text + "<pad></s></s>",
            "</s>" + text);
    int[] stripped;
    int[] verbatim;
    try (Tokenizer tok = Tokenizer.load(dir)) {
      stripped = tok.encode(text + "</s>");
      verbatim = tok.encode(text);
    }
    assertEquals(2, stripped[stripped.length - 1], "</s> is one token, id 2");
    List<JsonNode> want =
        rmeScore(
            models.savedModel,
            dir,
            List.of(
                "{\"input_ids\": " + Arrays.toString(stripped) + "}",
                "{\"input_ids\": " + Arrays.toString(verbatim) + "}"));
    float eosReward = want.get(0).get("reward").floatValue();
    // The EOS matters: the verbatim text without it scores differently.
    assertTrue(
        Math.abs(eosReward - want.get(1).get("reward").floatValue()) > 1e-3, want.toString());
    try (Tokenizer padTok = Tokenizer.load(dir);
        RewardModel saved = RewardModel.load(models.savedModel);
        RewardServer s =
            RewardServer.start(
                saved,
                ServeModels.encoder(padTok, saved.config().maxPositions()),
                ServeOptions.defaults("rm", saved.aggregation()).withPort(0))) {
      HttpResponse<String> r =
          HttpClient.newHttpClient()
              .send(
                  HttpRequest.newBuilder(URI.create(s.address() + "/get_reward"))
                      .POST(
                          HttpRequest.BodyPublishers.ofString(
                              "{\"query\": " + JSON.writeValueAsString(queries) + "}"))
                      .timeout(Duration.ofSeconds(60))
                      .build(),
                  HttpResponse.BodyHandlers.ofString());
      assertEquals(200, r.statusCode(), r.body());
      JsonNode g = JSON.readTree(r.body());
      // The same ids, in batches of other lengths (padding): equal to float rounding.
      for (int i = 0; i < queries.size(); i++) {
        assertEquals(eosReward, g.get("rewards").get(i).floatValue(), 1e-5, queries.get(i));
        JsonNode m = g.get("extra_logs").get("members").get(i);
        for (int k = 0; k < m.size(); k++) {
          assertEquals(
              want.get(0).get("members").get(k).floatValue(),
              m.get(k).floatValue(),
              1e-5,
              queries.get(i));
        }
      }
    }
  }
}
