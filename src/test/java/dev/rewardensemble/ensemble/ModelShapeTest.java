package dev.rewardensemble.ensemble;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a model directory holds, read from its JSON alone, against the loaded model. */
class ModelShapeTest {
  static final Path FIX = Path.of("src/test/resources/fixtures");

  @Test
  void peftAdaptersOverACheckpoint() throws Exception {
    Path base = FIX.resolve("llama-seqcls");
    List<Path> adapters =
        List.of(
            FIX.resolve("llama-lora/member0"),
            FIX.resolve("llama-lora/member1"),
            FIX.resolve("llama-lora/member2"));
    ModelShape s = ModelShape.read(base, adapters).orElseThrow();
    EnsembleModel m = EnsembleModel.load(base, adapters);
    assertEquals(EnsembleKind.LORA, s.kind());
    assertEquals(m.members(), s.k());
    assertEquals(m.config(), s.config());
    assertEquals(m.lora().rank(), s.lora().rank());
    assertEquals(m.parameterCounts().adapter(), MemoryPlan.adapterParameters(s.config(), s.lora()));
    assertEquals(m.parameterCounts().trunk(), MemoryPlan.trunkParameters(s.config()));
  }

  @Test
  void aCheckpointAndAPreset() throws Exception {
    ModelShape s = ModelShape.read(FIX.resolve("llama-seqcls"), List.of()).orElseThrow();
    EnsembleModel m = EnsembleModel.load(FIX.resolve("llama-seqcls"));
    assertEquals(m.kind(), s.kind());
    assertEquals(m.members(), s.k());
    ModelShape p = ModelShape.read(Path.of("tf-graphs/llama-7b.json"), List.of()).orElseThrow();
    assertEquals(EnsembleKind.SINGLE, p.kind());
    assertEquals(6_607_343_616L, MemoryPlan.trunkParameters(p.config()));
  }

  @Test
  void whatCannotBeReadFromJsonIsLeftToTheLoader(@TempDir Path tmp) throws Exception {
    assertTrue(ModelShape.read(tmp, List.of()).isEmpty()); // no config.json
    Files.writeString(tmp.resolve("config.json"), "{not json");
    assertTrue(ModelShape.read(tmp, List.of()).isEmpty());
  }
}
