"""Reference values for sandwich-core's nn layers, from PyTorch.

For each layer: random inputs and parameters (seeded), the output, and the gradient of
`(output * upstream).sum()` with respect to every input and parameter, where `upstream` is a
fixed random tensor. Computed in float64 and stored as float32 in
`fixtures/nn.safetensors`, which `kernel/core/tests/nn_parity.rs` reads; CI needs no torch.

Run: pip install torch safetensors && python3 tests/parity/make_nn_fixtures.py
"""

import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
HERE = os.path.dirname(os.path.abspath(__file__))
out = {}


def leaf(*shape, scale=1.0):
    return (torch.randn(*shape, dtype=torch.float64) * scale).requires_grad_(True)


def record(name, fn, **inputs):
    y = fn(**inputs)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    out[f"{name}.output"] = y.detach()
    out[f"{name}.upstream"] = g
    for k, v in inputs.items():
        out[f"{name}.input.{k}"] = v.detach()
        if v.grad is not None:
            out[f"{name}.grad.{k}"] = v.grad


B, H, T, D, C = 2, 3, 5, 8, 12
record("softmax", lambda x: torch.softmax(x, -1), x=leaf(B, T, C, scale=3.0))
record("log_softmax", lambda x: torch.log_softmax(x, -1), x=leaf(B, T, C, scale=3.0))
record("layer_norm", lambda x, w, b: F.layer_norm(x, (C,), w, b, 1e-5),
       x=leaf(B, T, C), w=leaf(C), b=leaf(C))


def rms(x, w):
    # LlamaRMSNorm
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w


record("rms_norm", rms, x=leaf(B, T, C), w=leaf(C))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


inv = 1.0 / (10000 ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv)
emb = torch.cat((freqs, freqs), dim=-1)
out["rope.cos"], out["rope.sin"] = emb.cos(), emb.sin()
record("rope", lambda x: x * emb.cos() + rotate_half(x) * emb.sin(), x=leaf(B, H, T, D))

mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
record("attention",
       lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
       q=leaf(B, H, T, D), k=leaf(B, H, T, D), v=leaf(B, H, T, D))

targets = torch.randint(0, C, (B * T,))
targets[3] = -100
out["cross_entropy.targets"] = targets
logits = leaf(B * T, C, scale=2.0)
loss = F.cross_entropy(logits, targets, ignore_index=-100)
loss.backward()
out["cross_entropy.input.logits"] = logits.detach()
out["cross_entropy.output"] = loss.detach().reshape(1)
out["cross_entropy.grad.logits"] = logits.grad

tensors = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in out.items()}
os.makedirs(os.path.join(HERE, "fixtures"), exist_ok=True)
save_file(tensors, os.path.join(HERE, "fixtures", "nn.safetensors"))
print(f"wrote {len(tensors)} tensors")
