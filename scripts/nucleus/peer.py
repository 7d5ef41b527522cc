# Usage: python peer.py flat|peaked [TOP_P], in the directory of make_models.py output.
# The peer on the same weights: transformers generate(do_sample, top_k=0, top_p=TOP_P (default 0.9)), bf16,
# 2 threads; prints seconds for 8 and 72 new tokens (model loaded once), batch 32.
import json, sys, time, torch
from transformers import LlamaForCausalLM
torch.set_num_threads(2)
name = sys.argv[1]
top_p = float(sys.argv[2]) if len(sys.argv) > 2 else 0.9
m = LlamaForCausalLM.from_pretrained(name, torch_dtype=torch.bfloat16).eval()
ids = torch.tensor([json.loads(l)["input_ids"] for l in open("prompts.jsonl")])
mask = torch.ones_like(ids)
for n in (8, 72, 8, 72):
    torch.manual_seed(1)
    t0 = time.perf_counter()
    with torch.no_grad():
        m.generate(input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, top_p=top_p, temperature=1.0,
                   max_new_tokens=n, min_new_tokens=n, pad_token_id=0)
    print(f"peer {name} top_p={top_p} new={n} {time.perf_counter()-t0:.2f} s", flush=True)
