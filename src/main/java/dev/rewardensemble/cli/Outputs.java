package dev.rewardensemble.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.rewardensemble.data.ScoreRow;
import dev.rewardensemble.ensemble.MemberScores;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/** Output rows and files of the command line. */
final class Outputs {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Outputs() {}

  /**
   * One scored row: {@code line}, the input's {@code id} if any, {@code reward}; for ensembles also
   * {@code members}, {@code members_standardized} (when normalised), {@code mean}, {@code std}.
   */
  static ObjectNode scoreRow(ScoreRow row, MemberScores s) {
    ObjectNode o = JSON.createObjectNode();
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
   * Writes lines to {@code file} atomically (temporary file, then rename), or to standard output
   * when {@code file} is null.
   */
  static void writeLines(Path file, List<String> lines) throws IOException {
    if (file == null) {
      Writer w = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
      for (String l : lines) {
        w.write(l);
        w.write('\n');
      }
      w.flush();
      return;
    }
    Path abs = file.toAbsolutePath();
    Files.createDirectories(abs.getParent());
    Path tmp = Files.createTempFile(abs.getParent(), "." + abs.getFileName(), ".tmp");
    try {
      try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
        for (String l : lines) {
          w.write(l);
          w.write('\n');
        }
      }
      try {
        Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
  }
}
