package dev.rewardensemble.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Opens the weights of a Hugging Face checkpoint directory as a {@link TensorSource}. */
public final class TensorSources {

  /** Single-file checkpoint name. */
  public static final String SINGLE_FILE = "model.safetensors";

  /** Index of a sharded checkpoint. */
  public static final String INDEX_FILE = "model.safetensors.index.json";

  private static final String PICKLE_FILE = "pytorch_model.bin";
  private static final String PICKLE_INDEX_FILE = "pytorch_model.bin.index.json";

  private TensorSources() {}

  /**
   * Opens the weights of a checkpoint: {@code dir/model.safetensors} if it exists, else the sharded
   * checkpoint of {@code dir/model.safetensors.index.json}. For convenience {@code dir} may also be
   * a {@code .safetensors} file or a {@code .safetensors.index.json} file itself.
   *
   * @throws IllegalArgumentException if the directory holds neither (the message says how to
   *     convert a PyTorch {@code pytorch_model.bin} checkpoint if there is one)
   * @throws NoSuchFileException if {@code dir} does not exist
   * @throws IOException if opening fails
   */
  public static TensorSource openCheckpoint(Path dir) throws IOException {
    if (Files.isRegularFile(dir)) {
      String name = dir.getFileName().toString();
      if (name.endsWith(".safetensors.index.json")) {
        return SafetensorsIndex.open(dir);
      }
      if (name.endsWith(".safetensors")) {
        return Safetensors.open(dir);
      }
      throw new IllegalArgumentException(
          dir + " is neither a checkpoint directory nor a .safetensors file");
    }
    if (!Files.isDirectory(dir)) {
      throw new NoSuchFileException(dir.toString(), null, "checkpoint directory does not exist");
    }
    Path single = dir.resolve(SINGLE_FILE);
    if (Files.exists(single)) {
      return Safetensors.open(single);
    }
    Path index = dir.resolve(INDEX_FILE);
    if (Files.exists(index)) {
      return SafetensorsIndex.open(index);
    }
    StringBuilder message =
        new StringBuilder("no " + SINGLE_FILE + " or " + INDEX_FILE + " in " + dir);
    String pickle =
        Files.exists(dir.resolve(PICKLE_FILE))
            ? PICKLE_FILE
            : Files.exists(dir.resolve(PICKLE_INDEX_FILE)) ? PICKLE_INDEX_FILE : null;
    if (pickle != null) {
      message.append(" (found ").append(pickle).append(", but PyTorch pickle checkpoints are");
    } else {
      message.append(" (").append(PICKLE_FILE).append(" is");
    }
    message
        .append(" not supported: convert the checkpoint with")
        .append(" python -c \"from transformers import AutoModelForSequenceClassification as M;")
        .append(" M.from_pretrained('")
        .append(dir)
        .append("').save_pretrained('")
        .append(dir)
        .append("', safe_serialization=True)\"")
        .append(", with the Auto class that matches the model, e.g. AutoModelForCausalLM)");
    throw new IllegalArgumentException(message.toString());
  }
}
