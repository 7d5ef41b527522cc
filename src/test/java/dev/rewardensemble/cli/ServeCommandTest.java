package dev.rewardensemble.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rewardensemble.testing.Cli;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code rme serve} as a process: startup line, bearer token, SIGTERM; bad options exit 2. */
class ServeCommandTest {
  @TempDir Path tmp;

  @Test
  void sigtermFinishesTheRequestInFlightAndExitsZero() throws Exception {
    Path token = tmp.resolve("token");
    Files.writeString(token, "t0ken-123\n");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Process p =
        new ProcessBuilder(
                java,
                "-Xmx512m",
                "-cp",
                System.getProperty("java.class.path"),
                Main.class.getName(),
                "serve",
                "--model",
                "examples/tiny-llama-rm",
                "--port",
                "0",
                "--max-batch",
                "64",
                "--max-wait-ms",
                "1500",
                "--token-file",
                token.toString(),
                "--threads",
                "1")
            .redirectError(tmp.resolve("err.txt").toFile())
            .start();
    try {
      BufferedReader out =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
      String line = out.readLine();
      Matcher m = Pattern.compile("listening on (http://127\\.0\\.0\\.1:\\d+) ").matcher(line);
      assertTrue(m.find(), line + "\n" + Files.readString(tmp.resolve("err.txt")));
      String base = m.group(1);
      assertTrue(line.contains("model tiny-llama-rm version 1, 1 member"), line);
      HttpClient http = HttpClient.newHttpClient();
      HttpRequest.Builder req =
          HttpRequest.newBuilder(URI.create(base + "/v1/models/tiny-llama-rm:predict"))
              .timeout(Duration.ofSeconds(30))
              .POST(HttpRequest.BodyPublishers.ofString("{\"instances\": [{\"input_ids\": [5]}]}"));
      assertEquals(401, http.send(req.build(), HttpResponse.BodyHandlers.ofString()).statusCode());
      // waits 1.5 s in the batcher for more requests; SIGTERM arrives meanwhile
      CompletableFuture<HttpResponse<String>> inFlight =
          http.sendAsync(
              req.header("Authorization", "Bearer t0ken-123").build(),
              HttpResponse.BodyHandlers.ofString());
      Thread.sleep(500);
      p.destroy(); // SIGTERM
      HttpResponse<String> r = inFlight.get(30, TimeUnit.SECONDS);
      assertEquals(200, r.statusCode(), r.body());
      assertTrue(r.body().startsWith("{\"predictions\":["), r.body());
      assertTrue(p.waitFor(30, TimeUnit.SECONDS), "stopped");
      String err = Files.readString(tmp.resolve("err.txt"));
      assertEquals(0, p.exitValue(), err);
      assertTrue(err.contains("rme serve: stopped"), err);
    } finally {
      p.destroyForcibly();
    }
  }

  @Test
  void badOptionsExitTwoWithOneLine() throws Exception {
    Path empty = tmp.resolve("empty-token");
    Files.writeString(empty, "\n");
    try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      String port = Integer.toString(taken.getLocalPort());
      List<List<String>> cases =
          List.of(
              List.of("--max-batch", "0", "--max-batch must be in [1, 4096], got 0"),
              List.of("--port", "70000", "--port must be in [0, 65535], got 70000"),
              List.of("--max-wait-ms", "-1", "--max-wait-ms must be in [0, 60000], got -1"),
              List.of("--max-queue", "0", "--max-queue must be >= 1, got 0"),
              List.of("--max-request-bytes", "0", "--max-request-bytes must be in [1, "),
              List.of("--token-file", empty.toString(), "--token-file " + empty + " is empty"),
              List.of("--name", "a/b", "--name must be letters, digits"),
              List.of("--truncate", "middle", "--truncate must be 'error' or 'left'"),
              List.of("--aggregation", "max", "--aggregation must be mean, lcb, min or uwo"),
              List.of("--port", port, "cannot listen on 127.0.0.1:" + port));
      for (List<String> c : cases) {
        // every other option is valid and the port is taken: never a server left running
        Cli.Run run =
            c.get(0).equals("--port")
                ? Cli.rme("serve", "--model", "examples/tiny-llama-rm", c.get(0), c.get(1))
                : Cli.rme(
                    "serve",
                    "--model",
                    "examples/tiny-llama-rm",
                    "--port",
                    port,
                    c.get(0),
                    c.get(1));
        assertEquals(2, run.code(), c + ": " + run.err());
        assertTrue(run.err().startsWith("rme: error: "), run.err());
        assertTrue(run.err().contains(c.get(2)), c + ": " + run.err());
        assertEquals(1, run.err().strip().lines().count(), run.err());
      }
    }
    Cli.Run missing = Cli.rme("serve", "--model", tmp.resolve("nope").toString());
    assertEquals(2, missing.code(), missing.err());
  }
}
