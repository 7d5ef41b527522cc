#!/usr/bin/env python3
"""Writes src/test/resources/fixtures/llama-padeos-seqcls/: a tiny Llama-2-style (default rope)
LlamaForSequenceClassification whose pad_token_id equals its eos_token_id (2), a right-padded batch
whose sequences end with EOS (padded with the same id; one has the id inside too), and

  rewards                 transformers' rewards (read at the rightmost token whose id != pad id)
  rewards_last_attended   the score head applied to transformers' final hidden state at the last
                          attended token (the trailing EOS)
  read_index / last_attended_index   the positions the two rules read

Needs torch and transformers (e.g. scripts/venv.sh .venv-fixture torch transformers).
Usage: python scripts/make_padeos_fixture.py [OUT_DIR]
"""
import json
import os
import sys

import torch
from transformers import LlamaConfig, LlamaForSequenceClassification

out = sys.argv[1] if len(sys.argv) > 1 else "src/test/resources/fixtures/llama-padeos-seqcls"
torch.manual_seed(14)
cfg = LlamaConfig(
    vocab_size=128,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=2,
    num_labels=1,
    initializer_range=0.2,
    tie_word_embeddings=False,
)
model = LlamaForSequenceClassification(cfg).eval()
model.config.architectures = ["LlamaForSequenceClassification"]

PAD = EOS = 2
seqs = [
    [1, 17, 45, 99, 12, 73, 5, 88, EOS],
    [1, 31, 64, 7, EOS],
    [1, 50, EOS, 23, 9, 41, EOS],  # the pad/eos id inside the sequence as well
]
T = max(len(s) for s in seqs)
ids = [s + [PAD] * (T - len(s)) for s in seqs]
mask = [[1] * len(s) + [0] * (T - len(s)) for s in seqs]
input_ids = torch.tensor(ids)
attention_mask = torch.tensor(mask)
with torch.no_grad():
    rewards = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0]
    hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    last_attended = [len(s) - 1 for s in seqs]
    at_eos = model.score(hidden[torch.arange(len(seqs)), torch.tensor(last_attended)])[:, 0]
non_pad = (input_ids != PAD).int() * torch.arange(T)
read_index = non_pad.argmax(-1).tolist()

os.makedirs(out, exist_ok=True)
model.save_pretrained(out, safe_serialization=True)
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(
        {
            "input_ids": ids,
            "attention_mask": mask,
            "rewards": rewards.tolist(),
            "rewards_last_attended": at_eos.tolist(),
            "read_index": read_index,
            "last_attended_index": last_attended,
        },
        f,
    )
    f.write("\n")
print("rewards (transformers):", rewards.tolist())
print("at the trailing EOS:   ", at_eos.tolist())
