package dev.rewardensemble.cli;

import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.config.ExecConfig;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.Tokenizer;
import dev.rewardensemble.server.RewardServer;
import dev.rewardensemble.server.ServeOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code rme serve}: the reward model as an HTTP server until SIGTERM or SIGINT. */
@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    description = {
      "Serve a reward model or ensemble over HTTP, with dynamic batching.",
      "  POST /v1/models/NAME[/versions/V]:predict  TF Serving's REST API",
      "  GET  /v1/models/NAME[/versions/V][/metadata]  its status and signature",
      "  POST /get_reward  OpenRLHF's remote reward model (text queries as its serve_rm.py:",
      "                    pad/EOS stripped from both ends, one EOS appended)",
      "  POST /v1/score    rme score's rows, answered with its output rows",
      "  GET  /metrics (Prometheus), /health",
      "Prints one line with the bound address. SIGTERM or SIGINT: stop accepting,",
      "answer the requests in flight, exit 0."
    })
public final class ServeCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      description =
          "Hugging Face checkpoint, run directory of train-rm (any ensemble kind), or SavedModel directory.")
  Path model;

  @Option(
      names = "--lora",
      split = ",",
      description =
          "PEFT LoRA adapter directories scored as ensemble members over --model (the base).")
  List<Path> lora;

  @Option(
      names = "--name",
      description =
          "The model's name in /v1/models/NAME (default: the SavedModel's NAME in NAME/V, else the"
              + " --model directory's name).")
  String name;

  @Option(
      names = "--host",
      defaultValue = "127.0.0.1",
      description = "Address to bind (default: ${DEFAULT-VALUE}, loopback only).")
  String host;

  @Option(
      names = "--port",
      defaultValue = "8501",
      description = "Port (default: ${DEFAULT-VALUE}, TF Serving's REST port; 0: any free port).")
  int port;

  @CommandLine.Mixin AggregationOptions aggregation = new AggregationOptions();

  @Option(
      names = "--no-normalize",
      description =
          "Aggregate raw member rewards even when the model stores a per-member normalisation.")
  boolean noNormalize;

  @Option(
      names = "--max-batch",
      defaultValue = "32",
      description = "Most sequences per Session.run (default: ${DEFAULT-VALUE}).")
  int maxBatch;

  @Option(
      names = "--max-wait-ms",
      defaultValue = "5",
      description =
          "How long the batcher waits for more requests after the oldest waiting one (default: ${DEFAULT-VALUE}).")
  long maxWaitMs;

  @Option(
      names = "--max-queue",
      defaultValue = "1024",
      description =
          "Most sequences waiting; a request that does not fit is answered 503 at once (default: ${DEFAULT-VALUE}).")
  int maxQueue;

  @Option(
      names = "--max-request-bytes",
      defaultValue = "16777216",
      description = "Largest request body; larger is answered 413 (default: ${DEFAULT-VALUE}).")
  long maxRequestBytes;

  @Option(
      names = "--token-file",
      description =
          "File holding a bearer token: every request then needs 'Authorization: Bearer <token>'.")
  Path tokenFile;

  @Option(
      names = "--http-threads",
      defaultValue = "64",
      description =
          "Most threads reading and answering HTTP requests; a request waiting for the batcher holds none (default: ${DEFAULT-VALUE}).")
  int httpThreads;

  @CommandLine.Mixin TextOptions text = new TextOptions();

  @CommandLine.Mixin RewardTokenOption rewardToken = new RewardTokenOption();

  @CommandLine.Mixin ExecOptions execOptions = new ExecOptions();

  @Override
  public Integer call() throws Exception {
    Outputs.paths()
        .input("--model", model)
        .inputs("--lora", lora)
        .inputFile("--tokenizer", text.tokenizer)
        .inputFile("--token-file", tokenFile)
        .check();
    text.check();
    Optional<String> token = tokenFile == null ? Optional.empty() : Optional.of(token(tokenFile));
    boolean saved =
        (lora == null || lora.isEmpty()) && Files.isRegularFile(model.resolve("saved_model.pb"));
    Path abs = model.toAbsolutePath().normalize();
    long version = 1;
    String dflt = abs.getFileName() == null ? "model" : abs.getFileName().toString();
    if (saved && abs.getFileName().toString().matches("[1-9][0-9]{0,17}")) {
      version = Long.parseLong(abs.getFileName().toString());
      dflt = abs.getParent() == null ? dflt : abs.getParent().getFileName().toString();
    }
    if (name == null && !dflt.matches("[A-Za-z0-9][A-Za-z0-9._-]*")) {
      throw new UserError(
          "--model's directory name '" + dflt + "' is not a model name; give --name");
    }
    // Validate every option before the model is loaded.
    ServeOptions probe =
        new ServeOptions(
            name != null ? name : dflt,
            version,
            host,
            port,
            maxBatch,
            maxWaitMs,
            maxQueue,
            maxRequestBytes,
            token,
            dev.rewardensemble.ensemble.AggregationConfig.mean(),
            !noNormalize,
            httpThreads,
            30_000);
    ExecConfig exec = execOptions.config();
    MemoryCheck.score(model, lora, maxBatch, text.maxLength, exec.weights())
        .ifPresent(p -> MemoryCheck.require(p, "rme serve of " + model));
    try (RewardModel rm = RewardModel.load(model, lora, exec, rewardToken.rule())) {
      ServeOptions opts = probe.withAggregation(aggregation.resolve(rm.aggregation()));
      try (Tokenizer tok = text.openTokenizer(rm.tokenizer())) {
        Encoder enc = text.encoder(tok, rm.config().maxPositions());
        RewardServer server = RewardServer.start(rm, enc, opts);
        CountDownLatch stopped = new CountDownLatch(1);
        Runnable stop =
            () -> {
              server.close();
              stopped.countDown();
            };
        onSignal("TERM", stop);
        onSignal("INT", stop);
        System.out.printf(
            "rme serve: listening on %s (model %s version %d, %d member%s%s)%n",
            server.address(),
            opts.name(),
            opts.version(),
            rm.heads(),
            rm.heads() == 1 ? "" : "s",
            token.isPresent() ? ", bearer token required" : "");
        System.out.flush();
        stopped.await();
        System.err.println("rme serve: stopped");
      }
    }
    return 0;
  }

  /** On signal {@code name}, runs {@code stop} once on a thread of its own. */
  private static void onSignal(String name, Runnable stop) {
    sun.misc.Signal.handle(
        new sun.misc.Signal(name), sig -> new Thread(stop, "rme-serve-stop").start());
  }

  private static String token(Path file) throws IOException {
    String t = Files.readString(file, StandardCharsets.UTF_8).strip();
    if (t.isEmpty()) {
      throw new UserError("--token-file " + file + " is empty");
    }
    if (t.contains("\n") || t.chars().anyMatch(c -> c < 0x21 || c > 0x7e)) {
      throw new UserError(
          "--token-file "
              + file
              + ": the token must be one line of printable ASCII without spaces");
    }
    return t;
  }
}
