"""The PyTorch peer of kernel/core/benches/train_gpt2.rs: training tokens/s of a GPT-2 124M
(transformers' default GPT2Config) on random tokens, fp32, AdamW, gradient clipping at 1.0.

Prints one JSON line: {"tokens_per_s": ..., "peak_rss_mib": ..., "compiled": ...}.
    python tests/bench/train_gpt2_torch.py --batch 4 --seq 256 --steps 3 [--device cuda --dtype bf16 --compile]
"""

import argparse
import json
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seq", type=int, default=256)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--device", default="cpu")
ap.add_argument("--dtype", default="f32")
ap.add_argument("--compile", action="store_true")
a = ap.parse_args()

dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config(attn_implementation="eager")).to(a.device)
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
step_fn = model
if a.compile:
    step_fn = torch.compile(model)
ids = torch.randint(0, 50257, (a.batch, a.seq), device=a.device)


def step():
    with torch.autocast(a.device, dtype=dtype, enabled=dtype != torch.float32):
        loss = step_fn(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def sync():
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_rss_mib():
    # VmHWM, not getrusage's ru_maxrss: the latter is inherited across fork + exec, so a child of
    # a large process reports its parent's peak.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


for _ in range(a.warmup):
    step()
sync()
t0 = time.perf_counter()
for _ in range(a.steps):
    step()
sync()
dt = time.perf_counter() - t0
print(json.dumps({
    "tokens_per_s": a.batch * a.seq * a.steps / dt,
    "peak_rss_mib": peak_rss_mib(),
    "threads": torch.get_num_threads(),
    "compiled": a.compile,
}))
