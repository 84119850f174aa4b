"""Reference values for the auxiliary confidence loss (kernel/core/tests/logconf_parity.rs).

The loss below is openai/weak-to-strong's `logconf_loss_fn` (weak_to_strong/loss.py), restated:
target = (1 − c)·weak + c·hardened strong predictions, hardened at the batch quantile of P(class 0)
matching the weak labels' mean P(class 1); c = aux_coef × (1 if step_frac > warmup_frac else
step_frac); soft cross-entropy. Writes random cases (logits, weak soft labels, step fractions)
with their loss and gradient to tests/parity/fixtures/logconf.json.

    pip install torch numpy && python tests/parity/make_logconf_fixtures.py
"""

import json
import pathlib

import torch


def logconf_loss(logits, labels, step_frac, aux_coef=0.5, warmup_frac=0.1):
    logits = logits.float()
    labels = labels.float()
    coef = 1.0 if step_frac > warmup_frac else step_frac
    coef = coef * aux_coef
    preds = torch.nn.functional.softmax(logits, dim=-1)
    mean_weak = torch.mean(labels, dim=0)
    threshold = torch.quantile(preds[:, 0], mean_weak[1])
    strong_preds = torch.cat([(preds[:, 0] >= threshold)[:, None], (preds[:, 0] < threshold)[:, None]], dim=1)
    target = labels * (1 - coef) + strong_preds.detach() * coef
    loss = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    return loss.mean()


def main():
    g = torch.Generator().manual_seed(0)
    cases = []
    for batch, step_frac in [(16, 0.05), (16, 0.5), (7, 0.1), (32, 0.9)]:
        logits = (torch.randn(batch, 2, generator=g) * 2).requires_grad_()
        p1 = torch.rand(batch, generator=g)
        labels = torch.stack([1 - p1, p1], dim=1)
        loss = logconf_loss(logits, labels, step_frac)
        loss.backward()
        cases.append({"logits": logits.detach().tolist(), "labels": labels.tolist(), "step_frac": step_frac,
                      "loss": loss.item(), "grad": logits.grad.tolist()})
    out = pathlib.Path(__file__).parent / "fixtures" / "logconf.json"
    out.write_text(json.dumps({"aux_coef": 0.5, "warmup_frac": 0.1, "cases": cases}))
    print("written", out)


if __name__ == "__main__":
    main()
