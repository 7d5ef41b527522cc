# Usage: python make_eos_model.py [SCALE] (default 2.3), after make_models.py, in the same directory.
# Writes peaked-eos/: the peaked model with its end-of-sequence token's (tied) embedding row multiplied by
# SCALE, so that sampled rows end at different steps (as Best-of-n's and PPO's responses do), for the
# A/B of dropping finished rows from the decode head.
import json, os, shutil, sys
import torch
from safetensors.torch import load_file, save_file
scale = float(sys.argv[1]) if len(sys.argv) > 1 else 2.3
os.makedirs("peaked-eos", exist_ok=True)
cfg = json.load(open("peaked/config.json"))
w = load_file("peaked/model.safetensors")
eos = cfg["eos_token_id"]
w["model.embed_tokens.weight"][eos] *= scale
save_file(w, "peaked-eos/model.safetensors", metadata={"format": "pt"})
for f in ("config.json", "generation_config.json"):
    shutil.copy(os.path.join("peaked", f), os.path.join("peaked-eos", f))
print("eos", eos, "row scaled by", scale)
