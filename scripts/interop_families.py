"""Checks scripts/interop_families.sh's exports of every family in Python.

For each family: transformers' AutoModelForSequenceClassification on the `--format hf` export gives
the fixture's rewards (transformers' own, in expected.json) and `rme score`'s; peft's
PeftModel.from_pretrained(base, member-k) on the `--format peft` export of the trained K = 2 LoRA
ensemble gives `rme score`'s member rewards; TensorFlow's SavedModel of the same ensemble gives them
too. Tolerance 1e-4 relative (float32 on both sides).

Usage: interop_families.py WORK_DIR FAMILY...
"""
import json
import os
import sys

import numpy as np

RESULTS = []


def check(name, fn):
    try:
        detail = fn()
        RESULTS.append((name, True))
        print(f"PASS {name}: {detail}", flush=True)
    except Exception as e:  # noqa: BLE001 - report every failure and go on
        RESULTS.append((name, False))
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)


def close(want, got, rtol=1e-4, atol=1e-5, what="values"):
    want = np.asarray(want, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if want.shape != got.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {want.shape}")
    err = np.abs(want - got)
    if not np.all(err <= atol + rtol * np.abs(want)):
        raise AssertionError(f"{what}: max abs error {err.max():.3g} (want {want.ravel()[:4]}, got {got.ravel()[:4]})")
    return f"max abs error {err.max():.2g}"


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    work, families = sys.argv[1], sys.argv[2:]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    import torch
    import tensorflow as tf
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    inputs = rows(os.path.join(work, "rows.jsonl"))
    for fam in families:
        out = os.path.join(work, fam)
        fixture = os.path.join(root, "src", "test", "resources", "hf-families", f"{fam}-seqcls")

        def hf(fam=fam, out=out, fixture=fixture):
            model = AutoModelForSequenceClassification.from_pretrained(os.path.join(out, "hf"), dtype=torch.float32)
            model.eval()
            with open(os.path.join(fixture, "expected.json")) as f:
                e = json.load(f)
            with torch.no_grad():
                got = model(input_ids=torch.tensor(e["input_ids"]),
                            attention_mask=torch.tensor(e["attention_mask"])).logits[:, 0].numpy()
                java = [r["reward"] for r in rows(os.path.join(out, "fixture-scores.jsonl"))]
                mine = [model(input_ids=torch.tensor([r["input_ids"]])).logits[0, 0].item() for r in inputs]
            return "; ".join([type(model).__name__,
                              "vs transformers on the fixture " + close(e["rewards"], got, what="fixture rewards"),
                              "vs rme score " + close(java, mine, what="rme score")])

        check(f"{fam}: transformers from_pretrained(--format hf) == fixture and rme score", hf)

        java = rows(os.path.join(out, "lora-scores.jsonl"))
        members = np.asarray([r["members"] for r in java])

        def peft(fam=fam, out=out):
            details = []
            for k in range(members.shape[1]):
                base = AutoModelForSequenceClassification.from_pretrained(os.path.join(out, "peft", "base"),
                                                                          dtype=torch.float32)
                model = PeftModel.from_pretrained(base, os.path.join(out, "peft", f"member-{k}"))
                model.eval()
                with torch.no_grad():
                    got = [model(input_ids=torch.tensor([r["input_ids"]])).logits[0, 0].item() for r in inputs]
                details.append(f"member {k} " + close(members[:, k], got, what=f"member {k}"))
            if np.allclose(members[:, 0], members[:, 1]):
                raise AssertionError("the two trained members give the same rewards")
            return "; ".join(details)

        check(f"{fam}: peft PeftModel.from_pretrained(base, --format peft member) == rme score members", peft)

        def savedmodel(fam=fam, out=out):
            sm = os.path.join(out, "savedmodels", fam, "1")
            sig = tf.saved_model.load(sm, tags=["serve"]).signatures["serving_default"]
            got = []
            for r in inputs:
                ids = tf.constant([r["input_ids"]], dtype=tf.int32)
                o = sig(input_ids=ids, attention_mask=tf.ones_like(ids))
                got.append(o["members"].numpy()[0])
            return close(members, np.asarray(got), what="SavedModel members")

        check(f"{fam}: tf.saved_model.load(LoRA ensemble export) == rme score members", savedmodel)

    failed = [n for n, ok in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed or not RESULTS else 0


if __name__ == "__main__":
    sys.exit(main())
