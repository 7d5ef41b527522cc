"""The peer of `rme bench --workloads scale`: one workload in PyTorch + transformers + peft, CPU,
in this (fresh) process, on the checkpoint and PEFT adapters `rme bench` wrote. Prints one line
`scale_result=<JSON>` with peak RSS (VmHWM) in bytes, the load's seconds and peak, and the seconds
of each step (the same fields as the project's bench/ScaleProbe).

Workloads (torch.set_num_threads(threads), dtype bfloat16 unless DTYPE says float32):
  score       AutoModelForSequenceClassification.from_pretrained(dtype=...) and `steps` forwards of
              the rows x seq ids (inference_mode)
  lora-score  the same base with the K PEFT adapters (PeftModel.from_pretrained + load_adapter),
              scored one after another with set_adapter as the paper does (K full forwards)
  lora-train  K fresh peft adapters (LoraConfig r 8, alpha 16, dropout 0.05, every projection,
              task SEQ_CLS so each adapter has its own score head), base frozen; per step, for
              each adapter: set_adapter, forward of the pair (rows 0 and 1), -logsigmoid(r_c - r_r),
              backward; then clip_grad_norm_(1.0) and one torch.optim.AdamW (lr 5e-5, weight decay
              0.01) step over every adapter's parameters
  check       `score` on the truncated checkpoint (rewards compared by rme bench)
  lora-check  `lora-score` on the truncated checkpoint and its adapters

Usage: python bench_scale_peer.py SPEC.json WORKLOAD DTYPE
"""

import json
import sys
import time


def vm_hwm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return -1


def main():
    spec = json.load(open(sys.argv[1]))
    workload = sys.argv[2]
    dtype_name = sys.argv[3]
    t0 = time.perf_counter()
    import torch
    import transformers
    import peft
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(spec["threads"])
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[dtype_name]
    out = {"workload": workload, "dtype": dtype_name,
           "info": {"torch": torch.__version__, "transformers": transformers.__version__,
                    "peft": peft.__version__, "python": sys.version.split()[0]}}
    cut = workload in ("check", "lora-check")
    ckpt = spec["checkpoint_cut"] if cut else spec["checkpoint"]
    adapters = spec["adapters_cut"] if cut else spec["adapters"]
    ids = torch.tensor(spec["ids"]["ids"], dtype=torch.long)
    mask = torch.ones_like(ids)
    steps = spec["steps"]
    t0 = time.perf_counter()
    base = AutoModelForSequenceClassification.from_pretrained(ckpt, dtype=dtype)
    base.config.attention_dropout = 0.0
    step_seconds = []
    rewards = None
    if workload in ("score", "check"):
        model = base.eval()
        out["load_seconds"] = time.perf_counter() - t0
        out["load_peak_rss_bytes"] = vm_hwm_bytes()
        with torch.inference_mode():
            for _ in range(steps):
                ts = time.perf_counter()
                r = model(input_ids=ids, attention_mask=mask).logits
                step_seconds.append(time.perf_counter() - ts)
        rewards = r.float().tolist()
    elif workload in ("lora-score", "lora-check"):
        names = [f"m{i}" for i in range(len(adapters))]
        model = PeftModel.from_pretrained(base, adapters[0], adapter_name=names[0])
        for n, a in zip(names[1:], adapters[1:]):
            model.load_adapter(a, adapter_name=n)
        model.eval()
        out["load_seconds"] = time.perf_counter() - t0
        out["load_peak_rss_bytes"] = vm_hwm_bytes()
        with torch.inference_mode():
            for _ in range(steps):
                ts = time.perf_counter()
                rs = []
                for n in names:
                    model.set_adapter(n)
                    rs.append(model(input_ids=ids, attention_mask=mask).logits)
                step_seconds.append(time.perf_counter() - ts)
        rewards = torch.cat(rs, 1).float().tolist()
    elif workload == "lora-train":
        import torch.nn.functional as F

        k = spec["k"]
        cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.05,
                         target_modules=list(spec["lora_targets"]))
        names = [f"m{i}" for i in range(k)]
        model = get_peft_model(base, cfg, adapter_name=names[0])
        for n in names[1:]:
            model.add_adapter(n, cfg)
        model.train()
        params = [p for n, p in model.named_parameters() if "lora_" in n or "modules_to_save" in n]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.01)
        out["load_seconds"] = time.perf_counter() - t0
        out["load_peak_rss_bytes"] = vm_hwm_bytes()
        out["trainable_parameters"] = sum(p.numel() for p in params)
        pair = ids[:2]
        pmask = mask[:2]
        for s in range(steps):
            ts = time.perf_counter()
            loss_sum = 0.0
            for n in names:
                model.set_adapter(n)
                r = model(input_ids=pair, attention_mask=pmask).logits[:, 0].float()
                loss = -F.logsigmoid(r[0] - r[1]) / k
                loss.backward()
                loss_sum += loss.item()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step_seconds.append(time.perf_counter() - ts)
            out[f"loss_step{s + 1}"] = loss_sum
    else:
        raise SystemExit(f"unknown workload {workload}")
    out["step_seconds"] = step_seconds
    if rewards is not None:
        out["rewards"] = rewards
    out["peak_rss_bytes"] = vm_hwm_bytes()
    print("scale_result=" + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
