"""Rewards of the hf-families reward-model fixtures under PyTorch bfloat16, for ActivationDtypeTest.

For every `*-seqcls` fixture: the model loaded with dtype=bfloat16 (what a bf16 checkpoint runs as in
PyTorch: weights and activations bf16, norms and softmax in float32 internally) and the float32 model
under torch.autocast(bfloat16) (products in bf16, the rest float32), on the fixture's batch. Writes
JSON {name: {"bf16": [...], "autocast": [...], "float32": [...]}} to the path given (default stdout).

Usage: HF_HUB_OFFLINE=1 python scripts/hf_families_bf16.py src/test/resources/hf-families DIR_OUT.json
"""

import json
import os
import sys

import torch
from transformers import AutoModelForSequenceClassification


def rewards(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits[:, 0].float().tolist()


def main():
    root = sys.argv[1]
    out = {}
    for name in sorted(os.listdir(root)):
        if not name.endswith("-seqcls"):
            continue
        d = os.path.join(root, name)
        e = json.load(open(os.path.join(d, "expected.json")))
        ids = torch.tensor(e["input_ids"])
        mask = torch.tensor(e["attention_mask"])
        row = {}
        m = AutoModelForSequenceClassification.from_pretrained(d, dtype=torch.bfloat16).eval()
        row["bf16"] = rewards(m, ids, mask)
        m = AutoModelForSequenceClassification.from_pretrained(d, dtype=torch.float32).eval()
        row["float32"] = rewards(m, ids, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            row["autocast"] = rewards(m, ids, mask)
        row["expected"] = e["rewards"]
        out[name] = row
    text = json.dumps(out, indent=1)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
