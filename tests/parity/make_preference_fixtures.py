"""Reference values of the preference-learning formulas, for
`kernel/core/tests/preference_parity.rs`.

Each formula is written here the way TRL (and lm-human-preferences for the adaptive KL
controller) writes it, and evaluated with PyTorch in float64 on fixed random float32 inputs;
gradients come from autograd. Stored in fixtures/preference.safetensors (inputs and outputs).

- Bradley-Terry reward loss (TRL RewardTrainer): -logsigmoid(rc - rr - margin).mean(); with a
  tie target p: -(p·logsigmoid(d) + (1-p)·logsigmoid(-d)).mean().
- DPO (TRL DPOTrainer.dpo_loss): h = (pc - pr) - (rc - rr); sigmoid with label smoothing ε,
  hinge relu(1 - βh), IPO (h - 1/(2β))² (TRL feeds IPO length-averaged log-probs; the Rust side
  does the averaging before this formula, so the formula is tested on its inputs).
- KL estimators k1 = -Δ, k3 = exp(Δ) - Δ - 1 with Δ = ref - logp (TRL GRPO's per_token_kl).
- PPO policy loss, value loss, clipfrac, approxkl (TRL PPOTrainer), GAE, masked_whiten.
- RLOO and GRPO group advantages (TRL; GRPO divides by std + 1e-4, std unbiased).
- Adaptive KL controller (lm-human-preferences): β ← β(1 + clip(KL/target - 1, ±0.2)·n/horizon).

Run: pip install torch safetensors numpy && python3 tests/parity/make_preference_fixtures.py
"""

import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(7)
HERE = os.path.dirname(os.path.abspath(__file__))
out = {}


def f32(shape, scale=1.0):
    return (torch.randn(*shape) * scale).float()


def grad_of(fn, *xs):
    xs = [x.double().clone().requires_grad_(True) for x in xs]
    y = fn(*xs)
    y.backward()
    return y.detach(), [x.grad for x in xs]


def put(name, t):
    out[name] = t.detach().contiguous().double()


# Bradley-Terry
rc, rr, margin = f32((8,)), f32((8,)), f32((8,), 0.5).abs()
target = torch.tensor([1, 0.5, 1, 1, 0.5, 1, 1, 0.5], dtype=torch.float32)
for n, x in [("bt.rc", rc), ("bt.rr", rr), ("bt.margin", margin), ("bt.target", target)]:
    put(n, x)
y, (gc, gr) = grad_of(lambda c, r: -F.logsigmoid(c - r).mean(), rc, rr)
put("bt.plain.loss", y), put("bt.plain.grad_rc", gc), put("bt.plain.grad_rr", gr)


def bt_full(c, r):
    d = c - r - margin.double()
    p = target.double()
    return -(p * F.logsigmoid(d) + (1 - p) * F.logsigmoid(-d)).mean()


y, (gc, gr) = grad_of(bt_full, rc, rr)
put("bt.full.loss", y), put("bt.full.grad_rc", gc), put("bt.full.grad_rr", gr)

# DPO
pc, pr, refc, refr = f32((8,), 5) - 20, f32((8,), 5) - 22, f32((8,), 5) - 20, f32((8,), 5) - 21
for n, x in [("dpo.pc", pc), ("dpo.pr", pr), ("dpo.rc", refc), ("dpo.rr", refr)]:
    put(n, x)
for name, beta, ls in [("sigmoid", 0.1, 0.0), ("sigmoid_ls", 0.1, 0.1), ("ipo", 0.5, 0.0), ("hinge", 0.1, 0.0)]:

    def dpo(c, r, name=name, beta=beta, ls=ls):
        h = (c - r) - (refc.double() - refr.double())
        if name.startswith("sigmoid"):
            per = -F.logsigmoid(beta * h) * (1 - ls) - F.logsigmoid(-beta * h) * ls
        elif name == "ipo":
            per = (h - 1 / (2 * beta)) ** 2
        else:
            per = torch.relu(1 - beta * h)
        return per.mean()

    y, (gc, gr) = grad_of(dpo, pc, pr)
    put(f"dpo.{name}.loss", y), put(f"dpo.{name}.grad_pc", gc), put(f"dpo.{name}.grad_pr", gr)
    put(f"dpo.{name}.chosen_rewards", beta * (pc.double() - refc.double()))
    put(f"dpo.{name}.rejected_rewards", beta * (pr.double() - refr.double()))

# KL estimators
logp, ref = f32((4, 6), 0.3) - 2, f32((4, 6), 0.3) - 2
put("kl.logp", logp), put("kl.ref", ref)
put("kl.k1", logp.double() - ref.double())
y, (g,) = grad_of(lambda lp: (torch.exp(ref.double() - lp) - (ref.double() - lp) - 1).mean(), logp)
put("kl.k3", torch.exp(ref.double() - logp.double()) - (ref.double() - logp.double()) - 1)
put("kl.k3_mean_grad", g)

# PPO policy and value losses
mask = torch.ones(4, 6)
mask[0, 4:] = 0
mask[2, 2:] = 0
new, old = f32((4, 6), 0.2) - 1.5, f32((4, 6), 0.2) - 1.5
adv, vpred, vold, ret = f32((4, 6)), f32((4, 6)), f32((4, 6)), f32((4, 6))
for n, x in [("ppo.mask", mask), ("ppo.new", new), ("ppo.old", old), ("ppo.adv", adv),
             ("ppo.vpred", vpred), ("ppo.vold", vold), ("ppo.ret", ret)]:
    put(n, x)
m = mask.double()


def masked_mean(x):
    return (x * m).sum() / m.sum()


def policy(lp):
    ratio = torch.exp(lp - old.double())
    pg1 = -adv.double() * ratio
    pg2 = -adv.double() * torch.clamp(ratio, 0.8, 1.2)
    return masked_mean(torch.max(pg1, pg2))


y, (g,) = grad_of(policy, new)
ratio = torch.exp(new.double() - old.double())
pg1, pg2 = -adv.double() * ratio, -adv.double() * torch.clamp(ratio, 0.8, 1.2)
put("ppo.policy.loss", y), put("ppo.policy.grad", g)
put("ppo.policy.clipfrac", masked_mean((pg2 > pg1).double()))
put("ppo.policy.approxkl", 0.5 * masked_mean((new.double() - old.double()) ** 2))
put("ppo.policy.ratio", masked_mean(ratio))


def value(v):
    vclip = torch.clamp(v, vold.double() - 0.2, vold.double() + 0.2)
    return 0.5 * masked_mean(torch.max((v - ret.double()) ** 2, (vclip - ret.double()) ** 2))


y, (g,) = grad_of(value, vpred)
vclip = torch.clamp(vpred.double(), vold.double() - 0.2, vold.double() + 0.2)
put("ppo.value.loss", y), put("ppo.value.grad", g)
put("ppo.value.clipfrac", masked_mean(((vclip - ret.double()) ** 2 > (vpred.double() - ret.double()) ** 2).double()))

# GAE (gamma 1, lambda 0.95) and whitening
rew, val = f32((7,)), f32((7,))
put("gae.rewards", rew), put("gae.values", val)
gamma, lam = 1.0, 0.95
lastgaelam, advs = 0.0, []
for t in reversed(range(7)):
    nextv = val[t + 1].double() if t < 6 else 0.0
    delta = rew[t].double() + gamma * nextv - val[t].double()
    lastgaelam = delta + gamma * lam * lastgaelam
    advs.append(lastgaelam)
a = torch.stack(advs[::-1])
put("gae.advantages", a), put("gae.returns", a + val.double())
x = f32((10,), 3) + 1
put("whiten.x", x)
mean, var = x.double().mean(), x.double().var()  # unbiased, as masked_var's default
put("whiten.shifted", (x.double() - mean) * torch.rsqrt(var + 1e-8))
put("whiten.unshifted", (x.double() - mean) * torch.rsqrt(var + 1e-8) + mean)

# RLOO and GRPO advantages, k = 4
r = f32((12,))
r[8:] = 0.5  # a group with zero spread
put("group.rewards", r)
g = r.double().view(-1, 4)
put("group.rloo", (g - (g.sum(1, keepdim=True) - g) / 3).flatten())
put("group.grpo", ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)).flatten())

# Adaptive KL controller
kls = torch.tensor([3.0, 12.0, 6.5, 0.0, 20.0], dtype=torch.float64)
beta, betas = 0.2, []
for kl in kls.tolist():
    e = min(max(kl / 6.0 - 1, -0.2), 0.2)
    beta *= 1 + e * 256 / 10000
    betas.append(beta)
put("klctl.kls", kls), put("klctl.betas", torch.tensor(betas, dtype=torch.float64))

os.makedirs(os.path.join(HERE, "fixtures"), exist_ok=True)
save_file(out, os.path.join(HERE, "fixtures", "preference.safetensors"))
print(f"wrote {len(out)} tensors")
