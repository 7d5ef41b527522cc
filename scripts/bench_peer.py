"""The peer of `rme bench --peer`: the same workloads in PyTorch + transformers (+ peft), CPU.

Reads the spec written by `rme bench` (exported Hugging Face checkpoints with 1 and K heads, the
token ids both sides use, batch/seq/K, threads, warm-up and repetitions) and writes OUT.json:
  {"peak_matmul_flops": x, "info": {...versions...},
   "workloads": {"<preset>/score": {"seconds": median}, ...},
   "memory": {"baseline_mb": x, "kinds": {"single": MiB above baseline, ...}}}

Workloads (medians of `reps` runs after `warmup` unmeasured ones, torch.set_num_threads(threads)):
  score        AutoModelForSequenceClassification forward on B x T ids (inference_mode)
  bt-step      B pairs = 2B sequences: forward, Bradley-Terry loss -logsigmoid(r_c - r_r), backward,
               clip_grad_norm_(1.0), torch.optim.AdamW(lr 1e-5, weight_decay 0.01) step, zero_grad
  generate     AutoModelForCausalLM.generate with its KV cache, greedy; generate-sampled: do_sample=True,
               temperature 1, top_k 50, top_p 0.9; b prompts, seq new tokens each, EOS ignored
  lora-step    the same with peft LoraConfig(r=8, alpha=16, dropout=0.05, the same target modules,
               task SEQ_CLS so the score head is trained too), base frozen
  ensemble-*   single (1 model), linear (1 model, num_labels=K), independent (K models, run one
               after the other), lora / lora-top1 (one peft model with K adapters, switched with
               set_adapter as in the paper: K full forwards; lora-top1 adapts only the top block
               via layers_to_transform, but still runs the whole trunk K times)
Weights: float32 checkpoints, or BF16 ones with `rme bench --weights bfloat16`; those load as bfloat16 only under
--compute bfloat16 and only where they are frozen (never for bt-step, which trains float32 weights as the project
does), else as float32 (exact). A preset's spec may list its own "workloads" (rme bench leaves out those whose memory
plan does not fit), and spec["kinds"] the ensemble kinds.
Dropout of the trunk is set to 0 (GPT-2's resid/embd/attn_pdrop) as in the project's graphs; the
LoRA dropout of 0.05 is kept on both sides.

Memory (spec["memory"]): each kind, and a baseline that imports torch/transformers/peft and builds
nothing, runs in a fresh interpreter (`--memory-probe`); peak RSS is VmHWM from /proc/self/status.

Usage: python bench_peer.py SPEC.json OUT.json
"""

import json
import os
import statistics
import subprocess
import sys
import time


def vm_hwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def setup_threads(n):
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def frozen_dtype():
    """The dtype frozen weights are loaded in: bfloat16 when the checkpoint is bf16 (--weights bfloat16) AND the
    products run in bfloat16 (--compute bfloat16), as a PyTorch user loads a bf16 model for bf16 inference; else
    float32 (bf16 -> float32 is exact, so the values are the project's either way)."""
    import torch

    return torch.bfloat16 if WEIGHTS == "bfloat16" and COMPUTE == "bfloat16" else torch.float32


def load(path, num_labels=None, trained=False):
    """The reward model at `path`: float32 when all of it is trained (the project trains float32 variables), else in
    frozen_dtype()."""
    from transformers import AutoConfig, AutoModelForSequenceClassification
    import torch

    cfg = AutoConfig.from_pretrained(path)
    for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "attention_dropout"):
        if hasattr(cfg, key):
            setattr(cfg, key, 0.0)
    dtype = torch.float32 if trained else frozen_dtype()
    model = AutoModelForSequenceClassification.from_pretrained(path, config=cfg, dtype=dtype)
    return model


COMPUTE = "float32"  # or "bfloat16": the workloads run under torch.autocast("cpu", bfloat16), as --compute
WEIGHTS = "float32"  # or "bfloat16": the exported checkpoints hold BF16 tensors (--weights bfloat16)


def measure(fn, warmup, reps):
    import contextlib
    import torch

    def ctx():
        return torch.autocast("cpu", dtype=torch.bfloat16) if COMPUTE == "bfloat16" else contextlib.nullcontext()

    for _ in range(warmup):
        with ctx():
            fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        with ctx():
            fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def read_ids(path):
    import torch

    with open(path) as f:
        d = json.load(f)
    return torch.tensor(d["ids"], dtype=torch.long)


def lora_config(targets, is_gpt2, layers=None):
    from peft import LoraConfig, TaskType

    kw = {}
    if layers is not None:
        kw["layers_to_transform"] = layers
    return LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.05,
                      target_modules=list(targets), fan_in_fan_out=is_gpt2, **kw)


def is_gpt2(model):
    return model.config.model_type == "gpt2"


def bt_step_fn(model, params, opt, ids, mask, b):
    import torch
    import torch.nn.functional as F

    def step():
        r = model(input_ids=ids, attention_mask=mask).logits[:, 0]
        loss = -F.logsigmoid(r[:b] - r[b:]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def ensemble(kind, p, k, targets, num_layers):
    """Returns a callable scoring a batch with ensemble `kind`, and the objects it keeps alive."""
    import torch
    from peft import get_peft_model

    if kind == "single":
        m = load(p["heads1"]).eval()
        return (lambda ids, mask: m(input_ids=ids, attention_mask=mask).logits), m
    if kind == "linear":
        m = load(p["headsk"]).eval()
        return (lambda ids, mask: m(input_ids=ids, attention_mask=mask).logits), m
    if kind == "independent":
        ms = [load(p["heads1"]).eval() for _ in range(k)]
        return (lambda ids, mask: torch.cat([m(input_ids=ids, attention_mask=mask).logits for m in ms], 1)), ms
    if kind in ("lora", "lora-top1"):
        base = load(p["heads1"])
        layers = None if kind == "lora" else [num_layers - 1]
        cfg = lora_config(targets, is_gpt2(base), layers)
        pm = get_peft_model(base, cfg, adapter_name="m0")
        for i in range(1, k):
            pm.add_adapter(f"m{i}", cfg)
        pm.eval()
        names = [f"m{i}" for i in range(k)]

        def run(ids, mask):
            out = []
            for n in names:
                pm.set_adapter(n)
                out.append(pm(input_ids=ids, attention_mask=mask).logits)
            return torch.cat(out, 1)

        return run, pm
    raise ValueError(kind)


KINDS = ["single", "linear", "independent", "lora", "lora-top1"]
SPEC_KINDS = KINDS  # the kinds rme bench asked for (spec["kinds"], --kinds)


def run_preset(p, spec, out, log):
    import torch

    b, warmup, reps, k = spec["batch"], spec["warmup"], spec["reps"], spec["k"]
    ids = read_ids(p["ids"])
    mask = torch.ones_like(ids)
    sid, smask = ids[:b], mask[:b]
    name = p["name"]
    wanted = set(p.get("workloads", spec.get("workloads", ["score", "bt-step", "lora-step", "generate",
                                                        "generate-sampled", "ensembles"])))

    if "score" in wanted:
        score_peer(p, name, sid, smask, b, warmup, reps, out, log)
    if "bt-step" in wanted:
        bt_step_peer(p, name, ids, mask, b, warmup, reps, out, log)
    if "lora-step" in wanted:
        lora_step_peer(p, name, ids, mask, b, warmup, reps, out, log)
    for g in ("generate", "generate-sampled"):
        if g in wanted:
            generate_peer(g, p, name, ids, b, warmup, reps, out, log)
    if "ensembles" in wanted:
        ensembles_peer(p, name, sid, smask, b, k, warmup, reps, out, log)


def prepare(name, p, ids, mask, b):
    """Workload `name` (score, bt-step, lora-step, generate) built on preset p: (run, keep-alive objects)."""
    import torch

    if name == "score":
        m = load(p["heads1"]).eval()
        sid, smask = ids[:b], mask[:b]

        def run():
            with torch.inference_mode():
                return m(input_ids=sid, attention_mask=smask).logits

        return run, [m]
    if name == "bt-step":
        m = load(p["heads1"], trained=True).train()
        params = [q for q in m.parameters() if q.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
        return bt_step_fn(m, params, opt, ids, mask, b), [m, opt]
    if name == "lora-step":
        from peft import get_peft_model

        base = load(p["heads1"])
        pm = get_peft_model(base, lora_config(p["lora_targets"], is_gpt2(base)))
        pm.train()
        params = [q for q in pm.parameters() if q.requires_grad]
        opt = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.01)
        return bt_step_fn(pm, params, opt, ids, mask, b), [pm, opt, params]
    if name in ("generate", "generate-sampled"):
        # generation with transformers' KV cache: b prompts of prompt_tokens ids, seq new tokens each, EOS ignored
        # (min_new_tokens = max_new_tokens), as the project's workload: greedy, or sampled with temperature 1,
        # top-k 50, top-p 0.9 (the project's generate-sampled)
        from transformers import AutoModelForCausalLM

        n_new = ids.shape[1]
        prompts = ids[:b, : p["prompt_tokens"]].contiguous()
        pmask = torch.ones_like(prompts)
        m = AutoModelForCausalLM.from_pretrained(p["causal"], dtype=frozen_dtype()).eval()
        sampling = (dict(do_sample=True, temperature=1.0, top_k=50, top_p=0.9) if name == "generate-sampled"
                    else dict(do_sample=False))
        torch.manual_seed(0)

        def run():
            with torch.inference_mode():
                return m.generate(input_ids=prompts, attention_mask=pmask, max_new_tokens=n_new,
                                  min_new_tokens=n_new, use_cache=True, pad_token_id=0, **sampling)

        return run, [m]
    raise ValueError(f"unknown workload {name}")


def score_peer(p, name, sid, smask, b, warmup, reps, out, log):
    run, keep = prepare("score", p, sid, smask, b)
    out.setdefault("attn_implementation", getattr(keep[0].config, "_attn_implementation", None))
    s = measure(run, warmup, reps)
    out["workloads"][f"{name}/score"] = {"seconds": s}
    log(f"{name}/score {b / s:.1f} sequences/s ({s:.3f} s)")


def bt_step_peer(p, name, ids, mask, b, warmup, reps, out, log):
    run, keep = prepare("bt-step", p, ids, mask, b)
    s = measure(run, warmup, reps)
    out["workloads"][f"{name}/bt-step"] = {"seconds": s}
    log(f"{name}/bt-step {2 * b * ids.shape[1] / s:.1f} tokens/s ({s:.3f} s)")


def lora_step_peer(p, name, ids, mask, b, warmup, reps, out, log):
    run, keep = prepare("lora-step", p, ids, mask, b)
    s = measure(run, warmup, reps)
    out["workloads"][f"{name}/lora-step"] = {"seconds": s, "trainable": sum(q.numel() for q in keep[2])}
    log(f"{name}/lora-step {2 * b * ids.shape[1] / s:.1f} tokens/s ({s:.3f} s)")


def generate_peer(workload, p, name, ids, b, warmup, reps, out, log):
    run, keep = prepare(workload, p, ids, None, b)
    s = measure(run, min(warmup, 1), min(reps, 5))
    out["workloads"][f"{name}/{workload}"] = {"seconds": s}
    log(f"{name}/{workload} {b * ids.shape[1] / s:.1f} tokens/s ({s:.3f} s)")


def ensembles_peer(p, name, sid, smask, b, k, warmup, reps, out, log):
    import torch

    for kind in [x for x in KINDS if x in SPEC_KINDS]:
        fn, keep = ensemble(kind, p, 1 if kind == "single" else k, p["lora_targets"], p["num_layers"])
        with torch.inference_mode():
            s = measure(lambda: fn(sid, smask), warmup, reps)
        out["workloads"][f"{name}/ensemble-{kind}"] = {"seconds": s}
        log(f"{name}/ensemble-{kind} {b / s:.1f} sequences/s ({s:.3f} s)")
        del fn, keep


def memory_probe(spec_path, kind):
    with open(spec_path) as f:
        spec = json.load(f)
    setup_threads(spec["threads"])
    global COMPUTE, WEIGHTS
    COMPUTE = spec.get("compute", "float32")
    WEIGHTS = spec.get("weights", "float32")
    import torch
    import transformers  # noqa: F401
    import peft  # noqa: F401

    transformers.utils.logging.disable_progress_bar()
    if kind == "baseline":
        (torch.ones(2) + 1).sum().item()
    elif kind in ("score", "bt-step", "lora-step", "generate", "generate-sampled"):
        p = spec["memory"]
        ids = read_ids(p["ids"])
        run, keep = prepare(kind, p, ids, torch.ones_like(ids), spec["batch"])
        run()
        run()
    else:
        p = spec["memory"]
        b = spec["batch"]
        ids = read_ids(p["ids"])[:b]
        mask = torch.ones_like(ids)
        fn, keep = ensemble(kind, p, 1 if kind == "single" else spec["k"], p["lora_targets"], p["num_layers"])
        with torch.inference_mode():
            fn(ids, mask)
            fn(ids, mask)
    print(f"peak_rss_mb={vm_hwm_mb():.1f}", flush=True)


def probe(spec_path, kind):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-probe", spec_path, kind],
                       capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("peak_rss_mb="):
            return float(line.split("=", 1)[1])
    raise RuntimeError(f"memory probe {kind} failed (exit {r.returncode}): {r.stderr[-2000:]}")


def main():
    if sys.argv[1] == "--memory-probe":
        memory_probe(sys.argv[2], sys.argv[3])
        return
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    setup_threads(spec["threads"])
    global COMPUTE, WEIGHTS, SPEC_KINDS
    COMPUTE = spec.get("compute", "float32")
    WEIGHTS = spec.get("weights", "float32")
    SPEC_KINDS = spec.get("kinds", KINDS)
    import torch
    import transformers
    import peft

    transformers.utils.logging.disable_progress_bar()

    def log(msg):
        print(msg, flush=True)

    out = {"info": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                    "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                    "mkldnn": torch.backends.mkldnn.is_available(), "mkl": torch.backends.mkl.is_available()},
           "workloads": {}}
    n = spec.get("matmul_n", 2048)
    if not spec.get("peak", True):  # rme bench runs one workload per process and the peak once, on its own
        out["info"]["compute"] = COMPUTE
        out["info"]["weights"] = WEIGHTS
        out["info"]["frozen_dtype"] = str(frozen_dtype())
        for p in spec["presets"]:
            run_preset(p, spec, out, log)
        out["info"]["attn_implementation"] = out.pop("attn_implementation", None)
        with open(out_path, "w") as f:
            json.dump(out, f, indent=2)
        return
    a, bm = torch.rand(n, n), torch.rand(n, n)
    compute, COMPUTE = COMPUTE, "float32"  # the peak is float32's, as the project's
    s = min(measure(lambda: torch.mm(a, bm), 2, 5) for _ in range(3))  # best median of 3 rounds, as rme bench
    COMPUTE = compute
    out["info"]["compute"] = COMPUTE
    out["info"]["weights"] = WEIGHTS
    out["info"]["frozen_dtype"] = str(frozen_dtype())
    out["peak_matmul_flops"] = 2.0 * n ** 3 / s
    log(f"peak float32 matmul ({n}x{n}, torch): {out['peak_matmul_flops'] / 1e9:.1f} GFLOP/s")
    del a, bm
    for p in spec["presets"]:
        run_preset(p, spec, out, log)
    # the peak again after the workloads, the best of both, as rme bench does
    compute, COMPUTE = COMPUTE, "float32"
    a, bm = torch.rand(n, n), torch.rand(n, n)
    s = min(measure(lambda: torch.mm(a, bm), 2, 5) for _ in range(3))
    COMPUTE = compute
    del a, bm
    log(f"peak float32 matmul after the workloads: {2.0 * n ** 3 / s / 1e9:.1f} GFLOP/s")
    out["peak_matmul_flops"] = max(out["peak_matmul_flops"], 2.0 * n ** 3 / s)
    out["info"]["attn_implementation"] = out.pop("attn_implementation", None)
    if "memory" in spec:
        base = probe(spec_path, "baseline")
        mem = {"baseline_mb": base, "kinds": {}}
        log(f"memory ({spec['memory']['name']}): baseline {base:.0f} MiB")
        for kind in spec["memory"].get("probes", KINDS):
            v = probe(spec_path, kind) - base
            mem["kinds"][kind] = v
            log(f"  {kind:12s} +{v:.0f} MiB")
        out["memory"] = mem
    with open(out_path, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
