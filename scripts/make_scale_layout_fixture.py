"""The layout fixture of `ScaleCheckpointTest`: how transformers 5 saves a bf16
LlamaForSequenceClassification (num_labels 1, pad_token_id set) with save_pretrained, once with the
default max_shard_size and once sharded (max_shard_size="40KB"): config.json and
model.safetensors.index.json verbatim, and every safetensors file's header and size in
layout.json (the values are random and not compared).

Usage: HF_HUB_OFFLINE=1 python scripts/make_scale_layout_fixture.py OUT_DIR
(writes OUT_DIR/preset.json, OUT_DIR/{default,sharded}/..., OUT_DIR/layout.json)
"""
import json
import os
import struct
import sys
import tempfile

import torch
import transformers
from transformers import LlamaConfig, LlamaForSequenceClassification

PRESET = {
    "model_type": "llama",
    "architectures": ["LlamaForSequenceClassification"],
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 172,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
SHARDED = "40KB"


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    kw = {k: v for k, v in PRESET.items() if k not in ("model_type", "architectures")}
    cfg = LlamaConfig(num_labels=1, **kw)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(cfg).to(torch.bfloat16)
    layout = {"transformers": transformers.__version__, "sharded_max_shard_size": SHARDED, "files": {}}
    with open(os.path.join(out, "preset.json"), "w") as f:
        json.dump(PRESET, f, indent=2)
        f.write("\n")
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs in (("default", {}), ("sharded", {"max_shard_size": SHARDED})):
            d = os.path.join(tmp, name)
            model.save_pretrained(d, **kwargs)
            os.makedirs(os.path.join(out, name), exist_ok=True)
            for fn in sorted(os.listdir(d)):
                path = os.path.join(d, fn)
                if fn.endswith(".safetensors"):
                    with open(path, "rb") as f:
                        n = struct.unpack("<Q", f.read(8))[0]
                        header = f.read(n).decode("utf-8")
                    layout["files"][f"{name}/{fn}"] = {"header": header, "size": os.path.getsize(path)}
                else:
                    with open(path, "rb") as src, open(os.path.join(out, name, fn), "wb") as dst:
                        dst.write(src.read())
    with open(os.path.join(out, "layout.json"), "w") as f:
        json.dump(layout, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
