package dev.rewardensemble.api;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/** Versions and source revision recorded with every trained or exported model. */
public final class Provenance {
  private Provenance() {}

  /** Adds library versions and, when the working directory is a git checkout, its commit. */
  public static void addVersions(ObjectNode o) {
    o.put("tensorflow", org.tensorflow.TensorFlow.version());
    o.put("tensorflow_java", "1.1.0");
    o.put("java", System.getProperty("java.version"));
    o.put("reward_ensemble", "0.1.0");
    String commit = gitCommit();
    if (commit != null) {
      o.put("git_commit", commit);
    }
  }

  /** {@code git rev-parse HEAD} of the working directory, or null. */
  public static String gitCommit() {
    try {
      Process p = new ProcessBuilder("git", "rev-parse", "HEAD").redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      if (p.waitFor(5, TimeUnit.SECONDS) && p.exitValue() == 0 && out.matches("[0-9a-f]{40}")) {
        return out;
      }
      return null;
    } catch (IOException e) {
      return null; // no git on this machine: provenance without a commit
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }
}
