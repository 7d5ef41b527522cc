# Usage: python make_models.py [SCALE] (default 8), in the directory to hold flat/, peaked/ and prompts.jsonl.
# A Llama with Llama 3's vocabulary at the bench memory model's size (hidden 1024, 8 blocks,
# GQA 16/4), random, bf16; "peaked" multiplies the final norm's weight by 8 so that next-token
# logits spread like a trained model's (top-p 0.9 nucleus among a few hundred tokens).
import json, os, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=128256, hidden_size=1024, intermediate_size=4096, num_hidden_layers=8,
                  num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=2048,
                  rope_theta=500000.0, tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001)
m = LlamaForCausalLM(cfg).to(torch.bfloat16)
for name, scale in (("flat", 1.0), ("peaked", float(sys.argv[1]) if len(sys.argv) > 1 else 8.0)):
    with torch.no_grad():
        m.model.norm.weight.fill_(scale)
    m.save_pretrained(name, safe_serialization=True)
import random
random.seed(1)
with open("prompts.jsonl", "w") as f:
    for i in range(32):
        f.write(json.dumps({"input_ids": [128000] + [random.randrange(1000, 120000) for _ in range(7)]}) + "\n")
