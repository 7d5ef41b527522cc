package dev.rewardensemble.server;

/**
 * A request the server refuses, with its HTTP status and a one-line message naming the field at
 * fault; answered as {@code {"error": message}}. Affects only the request that caused it.
 */
public final class RequestError extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final int status;

  public RequestError(int status, String message) {
    super(message, null, false, false);
    this.status = status;
  }

  /** 400: the request is malformed. */
  static RequestError bad(String message) {
    return new RequestError(400, message);
  }

  public int status() {
    return status;
  }
}
