"""Checks the project's exports in the Python stack (run by scripts/python-interop.sh).

Reads OUT/java-rewards.json written by dev.rewardensemble.interop.InteropExport and checks, per model:
  * tf.saved_model.load(dir).signatures["serving_default"] gives Java's outputs (abs/rel 1e-5);
  * `saved_model_cli show --dir D --all` runs and lists serving_default;
  * the --format hf export loads with AutoModelForSequenceClassification.from_pretrained and gives
    Java's member rewards (abs/rel 1e-4) on the same right-padded inputs with attention_mask;
  * K = 1: both agree with the fixture's transformers rewards (abs/rel 1e-4).
Prints PASS/FAIL per check; exits 1 when any check fails.

Usage: python interop_check.py OUT_DIR SAVED_MODEL_CLI
"""

import json
import os
import subprocess
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

RESULTS = []


def check(name, fn):
    try:
        detail = fn()
        RESULTS.append((name, True))
        print(f"PASS {name}" + (f": {detail}" if detail else ""), flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the others
        RESULTS.append((name, False))
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        if os.environ.get("RME_INTEROP_DEBUG"):
            traceback.print_exc()


def close(want, got, rtol, atol, what):
    want = np.asarray(want, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if want.shape != got.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {want.shape}")
    err = np.abs(want - got)
    bad = err > atol + rtol * np.abs(want)
    if bad.any():
        i = np.unravel_index(np.argmax(err - rtol * np.abs(want)), want.shape)
        raise AssertionError(f"{what}: {bad.sum()} values differ, worst at {i}: want {want[i]}, got {got[i]}")
    return f"max abs diff {err.max():.2e}"


def main():
    out_dir, cli = sys.argv[1], sys.argv[2]
    with open(os.path.join(out_dir, "java-rewards.json")) as f:
        report = json.load(f)
    models = report["models"]

    import tensorflow as tf

    for m in models:
        name, k = m["name"], m["heads"]
        ids = np.asarray(m["input_ids"], dtype=np.int32)
        mask = np.asarray(m["attention_mask"], dtype=np.int32)
        b = ids.shape[0]

        def savedmodel(m=m, ids=ids, mask=mask, b=b, k=k):
            loaded = tf.saved_model.load(m["savedmodel"], tags=["serve"])
            sig = loaded.signatures["serving_default"]
            got = sig(input_ids=tf.constant(ids), attention_mask=tf.constant(mask))
            want_keys = {"reward"} if k == 1 else {"reward", "members", "mean", "std", "lcb"}
            if set(got.keys()) != want_keys:
                raise AssertionError(f"outputs {sorted(got.keys())}, expected {sorted(want_keys)}")
            details = []
            for key in sorted(want_keys):
                want = np.asarray(m["outputs"][key]).reshape(got[key].shape)
                details.append(key + " " + close(want, got[key].numpy(), 1e-5, 1e-5, key))
            if k == 1:
                details.append("vs transformers " + close(m["expected_rewards"], got["reward"].numpy(), 1e-4, 1e-5, "fixture"))
            else:
                close(np.asarray(m["members"]), got["members"].numpy().reshape(b, k), 1e-5, 1e-5, "members")
            return "; ".join(details)

        check(f"{name}: tf.saved_model.load signatures['serving_default'] == Java", savedmodel)

        def cli_show(m=m):
            p = subprocess.run([cli, "show", "--dir", m["savedmodel"], "--all"], capture_output=True, text=True,
                               timeout=300)
            if p.returncode != 0:
                raise AssertionError(f"exit {p.returncode}: {p.stderr.strip().splitlines()[-1:]}")
            for needle in ("serving_default", "tensorflow/serving/predict", "input_ids", "attention_mask", "reward"):
                if needle not in p.stdout:
                    raise AssertionError(f"'{needle}' not in the output")
            return "lists serving_default (tensorflow/serving/predict)"

        check(f"{name}: saved_model_cli show --all", cli_show)

    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    for m in models:
        name, k = m["name"], m["heads"]

        def hf(m=m, k=k):
            model = AutoModelForSequenceClassification.from_pretrained(m["hf"], pad_token_id=m["pad_token_id"])
            model.eval()
            if model.config.num_labels != k:
                raise AssertionError(f"num_labels {model.config.num_labels}, expected {k}")
            ids = torch.tensor(m["input_ids"], dtype=torch.long)
            mask = torch.tensor(m["attention_mask"], dtype=torch.long)
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits.numpy()
            details = [type(model).__name__, "members " + close(np.asarray(m["members"]), logits, 1e-4, 1e-5, "logits")]
            if k == 1:
                details.append("vs fixture " + close(m["expected_rewards"], logits[:, 0], 1e-4, 1e-5, "fixture"))
            return "; ".join(details)

        check(f"{name}: transformers from_pretrained(--format hf) == Java", hf)

    peft_report = report.get("peft")
    if peft_report:
        from peft import PeftModel

        for k, member_dir in enumerate(peft_report["members"]):

            def peft_member(k=k, member_dir=member_dir):
                base = AutoModelForSequenceClassification.from_pretrained(peft_report["base"])
                model = PeftModel.from_pretrained(base, member_dir)
                model.eval()
                ids = torch.tensor(peft_report["input_ids"], dtype=torch.long)
                mask = torch.tensor(peft_report["attention_mask"], dtype=torch.long)
                with torch.no_grad():
                    logits = model(input_ids=ids, attention_mask=mask).logits.numpy()[:, 0]
                java = np.asarray(peft_report["java_member_rewards"])[:, k]
                return "; ".join([
                    "vs Java " + close(java, logits, 1e-4, 1e-5, "member"),
                    "vs fixture " + close(np.asarray(peft_report["expected_member_rewards"])[:, k], logits, 1e-4, 1e-5,
                                          "fixture"),
                ])

            check(f"peft member {k}: PeftModel.from_pretrained(exported adapter) == Java", peft_member)

    failed = [n for n, ok in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed or not RESULTS else 0


if __name__ == "__main__":
    sys.exit(main())
