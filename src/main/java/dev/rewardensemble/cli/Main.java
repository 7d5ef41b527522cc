package dev.rewardensemble.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of the {@code rme} command line. Each subcommand is one file in this package and only
 * parses, validates and calls the public API.
 *
 * <p>Exit codes: 0 success, 2 bad input or usage (one line naming the file, line, key or value), 3
 * training diverged (with advice), 1 an unexpected internal error.
 */
@Command(
    name = "rme",
    mixinStandardHelpOptions = true,
    version = "rme 0.1.0 (reward-ensemble)",
    description = "Reward-model ensembles for RLHF on TensorFlow Java.",
    subcommands = {
      ScoreCommand.class,
      TrainRmCommand.class,
      ExportCommand.class,
      MergeCommand.class,
      GenerateCommand.class,
      BestOfNCommand.class,
      PpoCommand.class,
      EvalCommand.class,
      InfoCommand.class,
      DiagnoseCommand.class,
      BenchCommand.class,
      ServeCommand.class,
      GraphCommand.class,
      SyntheticCommand.class,
      DemoCommand.class,
      SparkScoreCommand.class
    })
public final class Main implements Runnable {

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "missing command");
  }

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs the command line and returns its exit code (tests call this instead of {@link #main}). */
  public static int run(String... args) {
    CommandLine cl = commandLine();
    return cl.execute(args);
  }

  /** Runs the command line with error messages going to {@code err}. */
  public static int run(PrintWriter err, String... args) {
    CommandLine cl = commandLine();
    cl.setErr(err);
    return cl.execute(args);
  }

  static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new Main());
    cl.setExecutionExceptionHandler(Main::handle);
    cl.setParameterExceptionHandler(
        (ex, a) -> {
          PrintWriter err = ex.getCommandLine().getErr();
          err.println(
              "rme: error: "
                  + oneLine(ex.getMessage())
                  + " (see '"
                  + ex.getCommandLine().getCommandSpec().qualifiedName()
                  + " --help')");
          err.flush();
          return 2;
        });
    return cl;
  }

  /**
   * Bad input (exit 2): a {@link UserError}, an {@link IllegalArgumentException} thrown by this
   * project's own validation (its throw site is in {@code dev.rewardensemble}), or a user's value
   * that does not parse as a path or number. An IllegalArgumentException raised inside a library
   * (TensorFlow's graph errors, the JDK's precondition checks) is a bug or an internal failure, not
   * the user's input: exit 1 with the trace hint.
   */
  static boolean isBadInput(Throwable t) {
    if (t instanceof UserError
        || t instanceof java.nio.file.InvalidPathException
        || t instanceof NumberFormatException) {
      return true;
    }
    if (!(t instanceof IllegalArgumentException) || isTensorFlow(t)) {
      return false;
    }
    StackTraceElement[] trace = t.getStackTrace();
    return trace.length == 0 || trace[0].getClassName().startsWith("dev.rewardensemble.");
  }

  static int handle(Exception ex, CommandLine cl, CommandLine.ParseResult parsed) {
    PrintWriter err = cl.getErr();
    Throwable t = ex;
    if (t instanceof UncheckedIOException u) {
      t = u.getCause();
    }
    if (t instanceof dev.rewardensemble.train.TrainingDivergedException) {
      err.println("rme: error: " + oneLine(t.getMessage()));
      err.flush();
      return 3;
    }
    if (t instanceof com.fasterxml.jackson.core.JsonProcessingException j) {
      // Jackson's own message spans lines and dumps the source; name the file, line and column.
      err.println("rme: error: " + jsonProblem(j));
      err.flush();
      return 2;
    }
    if (isBadInput(t)) {
      err.println("rme: error: " + oneLine(t.getMessage()));
      err.flush();
      return 2;
    }
    if (t instanceof NoSuchFileException n) {
      err.println("rme: error: file not found: " + n.getFile());
      err.flush();
      return 2;
    }
    if (t instanceof IOException) {
      err.println("rme: error: " + oneLine(String.valueOf(t)));
      err.flush();
      return 2;
    }
    err.println("rme: internal error: " + oneLine(String.valueOf(t)));
    if (System.getenv("RME_DEBUG") != null) {
      t.printStackTrace(err);
    } else {
      err.println("(set RME_DEBUG=1 for the stack trace)");
    }
    err.flush();
    return 1;
  }

  private static boolean isTensorFlow(Throwable t) {
    return t instanceof org.tensorflow.exceptions.TensorFlowException
        || t.getClass().getName().startsWith("org.tensorflow.");
  }

  /** {@code FILE: invalid JSON at line L, column C: problem} without Jackson's source excerpt. */
  static String jsonProblem(com.fasterxml.jackson.core.JsonProcessingException j) {
    com.fasterxml.jackson.core.JsonLocation loc = j.getLocation();
    String where = "";
    if (loc != null) {
      Object raw = loc.contentReference() == null ? null : loc.contentReference().getRawContent();
      String file =
          raw instanceof java.io.File f
              ? f.getPath() + ": "
              : raw instanceof java.nio.file.Path p ? p + ": " : "";
      where =
          file + "invalid JSON at line " + loc.getLineNr() + ", column " + loc.getColumnNr() + ": ";
    } else {
      where = "invalid JSON: ";
    }
    return where + oneLine(j.getOriginalMessage());
  }

  /** The first line of a message ("(no message)" for none), so that an error stays one line. */
  static String oneLine(String message) {
    if (message == null || message.isBlank()) {
      return "(no message)";
    }
    int nl = message.indexOf('\n');
    return nl < 0 ? message : message.substring(0, nl).strip();
  }
}
