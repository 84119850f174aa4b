"""Checks that HF transformers loads what `Model:save` writes, and computes the same numbers.

    cargo run --release -- run tests/parity/save_for_hf.lua /tmp/sw-hf
    python tests/parity/check_hf_loads.py /tmp/sw-hf

`save_for_hf.lua` saves a GPT-2 LM, a Llama classifier and a BERT classifier (random weights,
the workbooks tokenizer) and writes our outputs to `ours.json`; this script loads each directory
with the Auto classes and compares. Last run (2026-11-26, transformers 5.24): identical to 1e-6.
"""

import json
import pathlib
import sys

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

root = pathlib.Path(sys.argv[1])
ours = json.loads((root / "ours.json").read_text())
worst = 0.0
for name in ["llama-cls", "bert-cls"]:
    d = root / name
    tok = AutoTokenizer.from_pretrained(d)
    m = AutoModelForSequenceClassification.from_pretrained(d).eval()
    b = tok(ours["texts"], return_tensors="pt", padding=True)
    probs = torch.softmax(m(**b).logits, -1)
    ref = torch.tensor(ours[name])
    worst = max(worst, (probs - ref).abs().max().item())
    print(name, type(m).__name__, "max |diff|", (probs - ref).abs().max().item())
d = root / "gpt2-lm"
m = AutoModelForCausalLM.from_pretrained(d).eval()
tok = AutoTokenizer.from_pretrained(d)
p = tok(ours["prompt"])["input_ids"]
c = tok(ours["completion"], add_special_tokens=False)["input_ids"]
lp = torch.log_softmax(m(torch.tensor([p + c])).logits[0, :-1], -1)
theirs = sum(lp[len(p) - 1 + i, t].item() for i, t in enumerate(c))
print("gpt2-lm", type(m).__name__, "logprob", theirs, "ours", ours["gpt2-lm"])
worst = max(worst, abs(theirs - ours["gpt2-lm"]))
assert worst < 1e-4, worst
print("ok")
