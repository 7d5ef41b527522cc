# Usage: python peer.py [N_PROMPTS] [N] [TOP_P], in the WORK directory of ab.sh (after it wrote prompts-bon.jsonl).
# The peer on the same weights and requests: transformers generate(do_sample, top_k=0, top_p=TOP_P (default 1.0),
# max_new_tokens=128, stopping at EOS), bf16, 2 threads, batches of 16 requests of the same prompt (as rme's plain
# batches); prints the wall time and the tokens generated (responses cut after their EOS), twice.
import json, sys, time, torch
from transformers import LlamaForCausalLM
torch.set_num_threads(2)
top_p = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
m = LlamaForCausalLM.from_pretrained("peaked-eos", torch_dtype=torch.bfloat16).eval()
eos = m.config.eos_token_id
reqs = [json.loads(l)["input_ids"] for l in open("prompts-bon.jsonl")]
for rep in (1, 2):
    torch.manual_seed(rep)
    tokens = 0
    t0 = time.perf_counter()
    for i in range(0, len(reqs), 16):
        ids = torch.tensor(reqs[i:i + 16])
        with torch.no_grad():
            out = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=0,
                             top_p=top_p, temperature=1.0, max_new_tokens=128, eos_token_id=eos, pad_token_id=0)
        for row in out[:, ids.shape[1]:].tolist():
            tokens += row.index(eos) + 1 if eos in row else len(row)
    print(f"peer rep {rep} requests {len(reqs)} tokens {tokens} {time.perf_counter() - t0:.2f} s", flush=True)
