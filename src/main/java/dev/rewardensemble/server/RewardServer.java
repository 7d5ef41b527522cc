package dev.rewardensemble.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.rewardensemble.api.RewardModel;
import dev.rewardensemble.data.Encoder;
import dev.rewardensemble.data.ScoreRow;
import dev.rewardensemble.ensemble.AggregationConfig;
import dev.rewardensemble.ensemble.Normalization;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.GracefulHandler;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * The reward model behind HTTP (Jetty 12): TF Serving's REST API ({@link TfServing}), OpenRLHF's
 * {@code /get_reward} and {@code rme score}'s rows at {@code /v1/score} ({@link TextProtocols}),
 * {@code /metrics} (Prometheus) and {@code /health}. Every scoring request goes through one {@link
 * Batcher}. A bad request is answered {@code {"error": ...}} with a 4xx naming the field, before it
 * reaches the queue, so it never affects other requests.
 *
 * <p>{@link #close()} is graceful: the server stops accepting connections, waits (up to {@link
 * ServeOptions#stopTimeoutMillis()}) for the requests in flight, which the batcher still scores,
 * and only then stops the batcher. The {@link RewardModel} stays the caller's to close.
 */
public final class RewardServer implements AutoCloseable {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;
  private static final Pattern MODEL_PATH =
      Pattern.compile("/v1/models/([^/:]+)(?:/versions/([^/:]+))?(:predict|/metadata)?");

  private final RewardModel model;
  private final Encoder encoder;
  private final TextProtocols.QueryText queryText; // null: no tokenizer
  private final ServeOptions options;
  private final Optional<Normalization> norm;
  private final AggregationConfig agg;
  private final int vocab;
  private final int maxPositions;
  private final ServerMetrics metrics;
  private final Batcher batcher;
  private final Server server;
  private final QueuedThreadPool pool;
  private final ServerConnector connector;
  private final byte[] tokenDigest;
  private boolean closed;

  private RewardServer(RewardModel model, Encoder encoder, ServeOptions options) {
    this.model = model;
    this.encoder = encoder;
    this.queryText =
        encoder.hasTokenizer() ? TextProtocols.QueryText.of(encoder.tokenizer()) : null;
    this.options = options;
    this.norm = options.normalize() ? model.normalization() : Optional.empty();
    this.agg = options.aggregation();
    this.vocab = model.config().vocabSize();
    this.maxPositions = model.config().maxPositions();
    this.tokenDigest = options.token().map(RewardServer::digest).orElse(null);
    Batcher[] b = new Batcher[1];
    this.metrics = new ServerMetrics(() -> b[0] == null ? 0 : b[0].depth());
    this.batcher =
        b[0] =
            new Batcher(
                model, options.maxBatch(), options.maxWaitMillis(), options.maxQueue(), metrics);
    pool = new QueuedThreadPool(options.httpThreads());
    pool.setName("rme-http");
    pool.setDaemon(true);
    server = new Server(pool);
    connector = new ServerConnector(server);
    connector.setHost(options.host());
    connector.setPort(options.port());
    server.addConnector(connector);
    server.setHandler(new GracefulHandler(new Routes()));
    server.setStopTimeout(options.stopTimeoutMillis());
    server.setStopAtShutdown(false);
  }

  /**
   * Starts serving {@code model} (which must stay open while the server runs).
   *
   * @param encoder turns text and conversations into ids (its tokenizer may be null: id rows only)
   * @throws IOException when the address cannot be bound
   */
  public static RewardServer start(RewardModel model, Encoder encoder, ServeOptions options)
      throws IOException {
    RewardServer s = new RewardServer(model, encoder, options);
    try {
      s.server.start();
    } catch (IOException e) {
      s.batcher.close();
      throw new IOException(
          "cannot listen on " + options.host() + ":" + options.port() + ": " + e.getMessage(), e);
    } catch (Exception e) {
      s.batcher.close();
      Throwable c = e.getCause() != null ? e.getCause() : e;
      throw new IOException(
          "cannot listen on " + options.host() + ":" + options.port() + ": " + c.getMessage(), e);
    }
    return s;
  }

  /** The port bound (the chosen one when the options asked for 0). */
  public int port() {
    return connector.getLocalPort();
  }

  /** {@code http://HOST:PORT}. */
  public String address() {
    String h = options.host().contains(":") ? "[" + options.host() + "]" : options.host();
    return "http://" + h + ":" + port();
  }

  /** Blocks until the server has stopped. */
  public void join() throws InterruptedException {
    server.join();
  }

  /**
   * Stops gracefully: no new connections, requests in flight are scored and answered, then the
   * batcher stops. Idempotent.
   */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      server.stop();
    } catch (Exception e) {
      // stop() reports requests that outlived the stop timeout; they are dropped with the server
    } finally {
      batcher.close();
    }
  }

  private static byte[] digest(String token) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Whether the request carries the bearer token (compared in constant time, via digests). */
  private boolean authorized(Request req) {
    if (tokenDigest == null) {
      return true;
    }
    String h = req.getHeaders().get(HttpHeader.AUTHORIZATION);
    if (h == null || !h.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return false;
    }
    return MessageDigest.isEqual(tokenDigest, digest(h.substring(7).strip()));
  }

  /** An answer: status, content type and body. */
  private record Answer(int status, String type, String body) {
    static Answer json(int status, JsonNode n) {
      try {
        return new Answer(status, "application/json", TextProtocols.JSON.writeValueAsString(n));
      } catch (JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }

    static Answer error(int status, String message) {
      ObjectNode o = F.objectNode();
      o.put("error", message);
      return json(status, o);
    }
  }

  /**
   * Routes a request. A scoring request's thread returns once the body is parsed and queued: the
   * answer is written when the batcher completes it, so waiting requests hold no thread.
   */
  private final class Routes extends Handler.Abstract {
    @Override
    public boolean handle(Request req, Response resp, Callback cb) {
      long t0 = System.nanoTime();
      String path = Request.getPathInContext(req);
      String method = req.getMethod();
      Matcher m = MODEL_PATH.matcher(path);
      String route = route(path, m);
      CompletableFuture<Answer> a;
      try {
        if (!authorized(req)) {
          resp.getHeaders().put(HttpHeader.WWW_AUTHENTICATE, "Bearer");
          throw new RequestError(
              401, "missing or wrong bearer token (Authorization: Bearer <token>)");
        }
        a = dispatch(req, method, path, route, m);
      } catch (RuntimeException | Error e) {
        a = CompletableFuture.failedFuture(e);
      }
      a.handle((ok, e) -> ok != null ? ok : failure(e))
          .thenAccept(
              ans -> {
                resp.setStatus(ans.status);
                resp.getHeaders().put(HttpHeader.CONTENT_TYPE, ans.type + "; charset=utf-8");
                if (ans.status == 401
                    || ans.status == 404
                    || ans.status == 405
                    || ans.status == 413) {
                  // Answered without reading the whole body: Jetty then closes the connection, and
                  // a
                  // client that pooled it could send its next request into the closing socket. Say
                  // so, so that clients open a new connection instead.
                  resp.getHeaders().put(HttpHeader.CONNECTION, "close");
                }
                metrics.request(route, ans.status, System.nanoTime() - t0);
                Content.Sink.write(resp, true, ans.body, cb);
              });
      return true;
    }
  }

  /** The answer to a request that failed: its own status, 503 after close, else 500. */
  private static Answer failure(Throwable e) {
    Throwable c =
        e instanceof java.util.concurrent.CompletionException && e.getCause() != null
            ? e.getCause()
            : e;
    if (c instanceof RequestError r) {
      return Answer.error(r.status(), r.getMessage());
    }
    if (c instanceof IllegalStateException && "closed".equals(c.getMessage())) {
      return Answer.error(503, "the model is closed (the server is shutting down)");
    }
    return Answer.error(500, "the model failed on this request: " + c);
  }

  private static String route(String path, Matcher m) {
    if (m.matches()) {
      return m.group(3) == null ? "status" : m.group(3).equals(":predict") ? "predict" : "metadata";
    }
    return switch (path) {
      case "/get_reward" -> "get_reward";
      case "/v1/score" -> "score";
      case "/metrics" -> "metrics";
      case "/health" -> "health";
      default -> "other";
    };
  }

  private CompletableFuture<Answer> dispatch(
      Request req, String method, String path, String route, Matcher m) {
    boolean post = route.equals("predict") || route.equals("get_reward") || route.equals("score");
    if (route.equals("other")) {
      throw new RequestError(404, "no such endpoint: " + method + " " + path);
    }
    if (!method.equals(post ? "POST" : "GET")) {
      throw new RequestError(
          405, method + " " + path + " is not supported; use " + (post ? "POST" : "GET"));
    }
    switch (route) {
      case "health" -> {
        ObjectNode o = F.objectNode();
        o.put("status", "ok");
        o.put("queue_depth", batcher.depth());
        return done(Answer.json(200, o));
      }
      case "metrics" -> {
        return done(new Answer(200, metrics.contentType().split(";")[0], metrics.text()));
      }
      case "status", "metadata", "predict" -> {
        checkModel(m.group(1), m.group(2));
        if (route.equals("status")) {
          return done(Answer.json(200, TfServing.status(options.version())));
        }
        if (route.equals("metadata")) {
          return done(
              Answer.json(
                  200, TfServing.metadata(options.name(), options.version(), model.heads())));
        }
        TfServing.Predict p = TfServing.parse(json(body(req)), vocab, maxPositions);
        return batcher
            .submit(p.rows())
            .thenApplyAsync(
                raw -> Answer.json(200, TfServing.answer(p.columnar(), raw, norm, agg)), pool);
      }
      case "get_reward" -> {
        List<int[]> q = TextProtocols.queries(json(body(req)), encoder, queryText);
        List<Batcher.Row> rows = new ArrayList<>(q.size());
        for (int i = 0; i < q.size(); i++) {
          rows.add(Inputs.row(q.get(i), null, "query[" + i + "]", vocab, maxPositions));
        }
        return batcher
            .submit(rows)
            .thenApplyAsync(raw -> Answer.json(200, TextProtocols.rewards(raw, norm, agg)), pool);
      }
      case "score" -> {
        TextProtocols.ScoreRequest s = TextProtocols.scoreRows(body(req), encoder, vocab);
        List<Batcher.Row> rows = new ArrayList<>(s.rows().size());
        for (ScoreRow r : s.rows()) {
          rows.add(Inputs.row(r.ids(), null, "line " + r.line(), vocab, maxPositions));
        }
        return batcher
            .submit(rows)
            .thenApplyAsync(
                raw -> {
                  List<JsonNode> out = TextProtocols.scoreAnswer(s.rows(), raw, norm, agg);
                  if (!s.jsonl()) {
                    return Answer.json(200, F.arrayNode().addAll(out));
                  }
                  StringBuilder sb = new StringBuilder();
                  for (JsonNode n : out) {
                    sb.append(n.toString()).append('\n');
                  }
                  return new Answer(200, "application/x-ndjson", sb.toString());
                },
                pool);
      }
      default -> throw new IllegalStateException(route);
    }
  }

  private void checkModel(String name, String version) {
    if (!name.equals(options.name())) {
      throw new RequestError(
          404,
          "Servable not found for request: Latest("
              + name
              + "); this server has '"
              + options.name()
              + "'");
    }
    if (version != null && !version.equals(Long.toString(options.version()))) {
      throw new RequestError(
          404,
          "Servable not found for request: Specific("
              + name
              + ", "
              + version
              + "); this server has version "
              + options.version());
    }
  }

  private static JsonNode json(String body) {
    return TextProtocols.parse(body, "body");
  }

  /** The body as UTF-8 text, at most {@code --max-request-bytes} (else 413). */
  private String body(Request req) {
    long limit = options.maxRequestBytes();
    long declared = req.getLength();
    if (declared > limit) {
      throw tooLarge(declared + " bytes");
    }
    ByteArrayOutputStream buf = new ByteArrayOutputStream(declared > 0 ? (int) declared : 1024);
    try (InputStream in = Content.Source.asInputStream(req)) {
      byte[] chunk = new byte[16384];
      int n;
      while ((n = in.read(chunk)) != -1) {
        if (buf.size() + (long) n > limit) {
          throw tooLarge("more than " + limit + " bytes");
        }
        buf.write(chunk, 0, n);
      }
    } catch (IOException e) {
      throw RequestError.bad("body: cannot read it: " + e.getMessage());
    }
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(java.nio.ByteBuffer.wrap(buf.toByteArray()))
          .toString();
    } catch (CharacterCodingException e) {
      throw RequestError.bad("body: not valid UTF-8");
    }
  }

  private RequestError tooLarge(String size) {
    return new RequestError(
        413,
        "the request body has "
            + size
            + ", more than --max-request-bytes "
            + options.maxRequestBytes());
  }

  private static CompletableFuture<Answer> done(Answer a) {
    return CompletableFuture.completedFuture(a);
  }
}
