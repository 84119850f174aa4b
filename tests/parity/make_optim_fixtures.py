"""Reference trajectory of torch.optim.AdamW with gradient clipping and a warm-up + cosine
schedule, for `kernel/core/tests/optim_parity.rs`.

Two parameters: `w` (4x3) in a group with weight decay 0.1, `b` (3,) in a group without; six
steps with fixed random gradients; before each step the gradients are clipped to a global norm
of 1.0 (`clip_grad_norm_`), after it the `LambdaLR` of HF's `get_cosine_schedule_with_warmup`
(2 warm-up steps, 6 in all, peak 1e-2) advances. Stored as float32 in fixtures/optim.safetensors.

Run: pip install torch safetensors numpy && python3 tests/parity/make_optim_fixtures.py
"""

import math
import os

import torch
from safetensors.torch import save_file

torch.manual_seed(1)
HERE = os.path.dirname(os.path.abspath(__file__))
STEPS, WARMUP, PEAK = 6, 2, 1e-2

w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
b = torch.randn(3, dtype=torch.float64, requires_grad=True)
out = {"w.init": w.detach().clone(), "b.init": b.detach().clone()}
opt = torch.optim.AdamW(
    [{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
    lr=PEAK, betas=(0.9, 0.999), eps=1e-8,
)


def cosine(step):
    if step < WARMUP:
        return step / max(1, WARMUP)
    progress = (step - WARMUP) / max(1, STEPS - WARMUP)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
lrs, norms = [], []
for t in range(STEPS):
    gw, gb = torch.randn(4, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    out[f"w.grad.{t}"], out[f"b.grad.{t}"] = gw, gb
    w.grad, b.grad = gw.clone(), gb.clone()
    norms.append(float(torch.nn.utils.clip_grad_norm_([w, b], 1.0)))
    lrs.append(opt.param_groups[0]["lr"])
    opt.step()
    sched.step()
    out[f"w.after.{t}"], out[f"b.after.{t}"] = w.detach().clone(), b.detach().clone()

out["lr"] = torch.tensor(lrs, dtype=torch.float64)
out["grad_norm"] = torch.tensor(norms, dtype=torch.float64)
save_file({k: v.float().contiguous() for k, v in out.items()},
          os.path.join(HERE, "fixtures", "optim.safetensors"))
print("lrs", lrs)
