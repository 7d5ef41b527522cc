package dev.rewardensemble.io;

import java.util.HashMap;
import java.util.Map;

/** The dtypes of the safetensors format, with their sizes in bits. */
enum DType {
  BOOL(8, false),
  F4(4, false),
  F6_E2M3(6, false),
  F6_E3M2(6, false),
  U8(8, false),
  I8(8, false),
  F8_E5M2(8, false),
  F8_E4M3(8, false),
  F8_E8M0(8, false),
  I16(16, false),
  U16(16, false),
  F16(16, true),
  BF16(16, true),
  I32(32, false),
  U32(32, false),
  F32(32, true),
  C64(64, false),
  F64(64, true),
  I64(64, false),
  U64(64, false);

  /** The dtypes {@link Safetensors#read} converts to float32, as listed in error messages. */
  static final String READABLE = "F32, F16, BF16, F64";

  private static final Map<String, DType> BY_NAME = new HashMap<>();

  static {
    for (DType t : values()) {
      BY_NAME.put(t.name(), t);
    }
  }

  final int bits;
  final boolean readableAsFloat;

  DType(int bits, boolean readableAsFloat) {
    this.bits = bits;
    this.readableAsFloat = readableAsFloat;
  }

  /** The dtype with this safetensors name (case-sensitive, like the format), or null. */
  static DType byName(String name) {
    return BY_NAME.get(name);
  }
}
