package dev.rewardensemble;
import static org.junit.jupiter.api.Assertions.*;
import org.junit.jupiter.api.Test;
class SmokeTest { @Test void tf() { assertEquals("2.18.0", org.tensorflow.TensorFlow.version()); } }
