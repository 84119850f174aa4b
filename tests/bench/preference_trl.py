"""Speed of the preference trainers and of sampling against their peers, on the same machine in
the same run: DPO optimizer steps/s against TRL's `DPOTrainer`, PPO steps/s (one sampled batch
and its `num_ppo_epochs` updates) against TRL's `PPOTrainer`, and sampling tokens/s with the KV
cache against HF `generate` at batch 1 and 16.

DPO and PPO use one small random GPT-2 (4 layers, 256 wide, the workbooks' 4k tokenizer) as
policy and as reward/value model, saved once as HF directories that both sides load; the same
data, batch, lengths and settings on both sides. Sampling uses SmolLM2-135M-Instruct, both sides
loading the same GGUF file dequantised to f32.

    python tests/bench/preference_trl.py --ours-python ~/.cache/sandwich-venv/bin/python \
        [--what dpo,ppo,generate] [--steps 12]

This interpreter needs torch, transformers, gguf, datasets and TRL; PPOTrainer left TRL's main
API in 1.x, so the PPO peer is `trl.experimental.ppo` (TRL 0.29, the last release with it;
`--trl-ppo-python` may name another interpreter for it). `--ours-python` is a Python with the
sandwich wheel (tests/run.sh builds one in ~/.cache/sandwich-venv). Each side runs in its own
process; the script prints one line per benchmark: ours, theirs, ratio (ours / theirs).
"""

import argparse
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "workbooks" / "tokenizer"
# Sampled as a chat (both sides apply the model's template), so completions run to the limit
# rather than ending at once, and both sides count the same kind of tokens.
STORY = "Write a short story about a dragon who learns to paint."
WORDS = ("the film was a quiet story of love and loss with fine acting and a long dull middle "
         "but the end is bright warm and funny so I would see it again with friends").split()


def texts(n_pairs: int) -> dict:
    rng = random.Random(0)
    sent = lambda k: " " + " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    return {
        "prompt": [f"Review {i}:" + sent(8) for i in range(n_pairs)],
        "chosen": [sent(24) for _ in range(n_pairs)],
        "rejected": [sent(24) for _ in range(n_pairs)],
    }


def setup(work: pathlib.Path) -> None:
    """The shared small models, as HF directories with the tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

    tok = json.loads((TOKENIZER / "tokenizer.json").read_text())
    vocab = len(tok["model"]["vocab"]) + len(tok.get("added_tokens", []))
    pad = next(t["id"] for t in tok["added_tokens"] if t["content"] == "<|pad|>")
    eos = next(t["id"] for t in tok["added_tokens"] if t["content"] == "<|endoftext|>")
    cfg = GPT2Config(vocab_size=vocab, n_positions=256, n_embd=256, n_layer=4, n_head=4,
                     bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    torch.manual_seed(0)
    for name, cls in [("policy", GPT2LMHeadModel), ("value", GPT2ForSequenceClassification)]:
        c = GPT2Config(**cfg.to_dict())
        if cls is GPT2ForSequenceClassification:
            c.num_labels = 1
        cls(c).save_pretrained(work / name)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(TOKENIZER / f, work / name / f)


def now() -> float:
    return time.perf_counter()


# --- ours -----------------------------------------------------------------------------------

def ours(what: str, work: pathlib.Path, steps: int, gguf: str) -> dict:
    import polars
    import sandwich

    ends: list = []  # when each optimizer step ended
    mark = lambda *_: ends.append(now())  # noqa: E731
    if what == "dpo":
        policy = sandwich.model.load(str(work / "policy"))
        data = polars.DataFrame(texts(8 * steps))
        t0 = now()
        sandwich.train.dpo(model=policy, data=data, batch_size=8, epochs=1, lr=1e-5, beta=0.1,
                           max_length=128, shuffle=False, on_step=mark)
        return rates(t0, ends)
    if what == "ppo":
        policy = sandwich.model.load(str(work / "policy"))
        ref = sandwich.model.load(str(work / "policy"))
        value = sandwich.model.load(str(work / "value"), head="scalar")
        rm = sandwich.model.load(str(work / "value"), head="scalar")
        prompts = texts(8 * steps)["prompt"]
        t0 = now()
        m = sandwich.train.ppo(model=policy, ref=ref, value=value, reward=rm, prompts=prompts,
                               steps=steps, prompts_per_step=8, batch_size=8, num_ppo_epochs=4,
                               max_new_tokens=24, temperature=0.7, lr=3e-6, beta=0.05,
                               on_step=mark)
        return {**rates(t0, ends),
                "mean_length": m.to_polars()["completions/mean_length"].mean()}
    batch = int(what.split("_")[1])
    m = sandwich.model.load(gguf)
    prompt = [STORY] * batch
    m.generate(prompt[:1], max_new_tokens=4, seed=0, chat=True)  # warm-up
    best, lengths = 0.0, []
    for rep in range(3):
        t0 = now()
        out = m.generate(prompt, max_new_tokens=64, temperature=1.0, seed=rep,
                         batch_size=batch, chat=True).to_polars()
        best = max(best, out["n_tokens"].sum() / (now() - t0))
        lengths.append(out["n_tokens"].mean())
    return {"tokens_per_s": best, "mean_length": sum(lengths) / len(lengths)}


def rates(t0: float, ends: list) -> dict:
    """Steps per second after warm-up — from the end of step 2 to the end of the last, the
    headline figure: it leaves out what each side does once (tokenising, the reference
    log-probs, first-touch page faults) — and over the whole call, setup included."""
    return {"steps_per_s": (len(ends) - 2) / (ends[-1] - ends[1]),
            "whole_run_steps_per_s": len(ends) / (ends[-1] - t0)}


class StepClock:
    """A TRL callback recording when each optimizer step ends."""

    def __new__(cls, ends: list):
        from transformers import TrainerCallback

        class Clock(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                ends.append(now())

        return Clock()


# --- theirs ---------------------------------------------------------------------------------

def theirs(what: str, work: pathlib.Path, steps: int, gguf: str) -> dict:
    import warnings

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    torch.manual_seed(0)
    if what in ("dpo", "ppo"):
        tok = AutoTokenizer.from_pretrained(work / "policy")
        policy = AutoModelForCausalLM.from_pretrained(work / "policy")
    out_dir = tempfile.mkdtemp()
    common = dict(output_dir=out_dir, report_to=[], save_strategy="no", logging_steps=10_000,
                  use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True)
    if what == "dpo":
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        data = Dataset.from_dict(texts(8 * steps))
        args = DPOConfig(per_device_train_batch_size=8, max_steps=steps, learning_rate=1e-5,
                         beta=0.1, max_length=128, precompute_ref_log_probs=True, **common)
        # The trainer is built inside the timed span: TRL computes the reference log-probs in
        # the constructor (and tokenises there), our `train.dpo` in the call. Same work on both
        # sides.
        ends: list = []
        t0 = now()
        trainer = DPOTrainer(model=policy, args=args, train_dataset=data, processing_class=tok,
                             callbacks=[StepClock(ends)])
        trainer.train()
        return rates(t0, ends)
    if what == "ppo":
        from datasets import Dataset
        from transformers import AutoModelForSequenceClassification
        from trl.experimental.ppo import PPOConfig, PPOTrainer

        ref = AutoModelForCausalLM.from_pretrained(work / "policy")
        value = AutoModelForSequenceClassification.from_pretrained(work / "value", num_labels=1)
        rm = AutoModelForSequenceClassification.from_pretrained(work / "value", num_labels=1)
        prompts = texts(8 * steps)["prompt"]
        data = Dataset.from_dict({"input_ids": [tok(p)["input_ids"] for p in prompts]})
        args = PPOConfig(per_device_train_batch_size=8, num_mini_batches=1, num_ppo_epochs=4,
                         total_episodes=8 * steps, response_length=24, temperature=0.7,
                         learning_rate=3e-6, kl_coef=0.05, local_rollout_forward_batch_size=8,
                         num_sample_generations=0, stop_token=None, **common)
        ends: list = []
        t0 = now()  # the trainer is built inside the timed span, as for DPO
        trainer = PPOTrainer(args=args, processing_class=tok, model=policy, ref_model=ref,
                             reward_model=rm, value_model=value, train_dataset=data,
                             callbacks=[StepClock(ends)])
        trainer.train()
        return rates(t0, ends)
    batch = int(what.split("_")[1])
    path = pathlib.Path(gguf)
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                 torch_dtype=torch.float32).eval()
    text = tok.apply_chat_template([{"role": "user", "content": STORY}], tokenize=False,
                                   add_generation_prompt=True)
    ids = tok([text] * batch, return_tensors="pt", add_special_tokens=False)
    eos = tok.eos_token_id
    with torch.inference_mode():
        model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=eos)  # warm-up
        best, lengths = 0.0, []
        for rep in range(3):
            torch.manual_seed(rep)
            t0 = now()
            out = model.generate(**ids, max_new_tokens=64, do_sample=True, temperature=1.0,
                                 top_k=0, top_p=1.0, pad_token_id=eos)
            dt = now() - t0
            gen = out[:, ids["input_ids"].shape[1]:]
            # Real tokens: up to and including each row's first end-of-sequence.
            n = 0
            for row in gen.tolist():
                n += row.index(eos) + 1 if eos in row else len(row)
            best = max(best, n / dt)
            lengths.append(n / batch)
    return {"tokens_per_s": best, "mean_length": sum(lengths) / len(lengths)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", default="dpo,ppo,generate_1,generate_16")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--ours-python", default=sys.executable)
    ap.add_argument("--trl-ppo-python", default=sys.executable)
    ap.add_argument("--gguf", default=os.environ.get("SANDWICH_SMOLLM2_GGUF", ""))
    ap.add_argument("--side", choices=["ours", "theirs"])
    ap.add_argument("--work")
    a = ap.parse_args()
    if a.steps < 3:
        ap.error("--steps: at least 3 (steps/s is measured from the end of step 2)")
    if a.side:
        fn = ours if a.side == "ours" else theirs
        print(json.dumps(fn(a.what, pathlib.Path(a.work), a.steps, a.gguf)))
        return
    import torch

    work = pathlib.Path(tempfile.mkdtemp(prefix="sandwich-bench-"))
    setup(work)
    print(f"# {os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads")
    for what in a.what.split(","):
        if what == "generate":
            what = "generate_1"
        row = {}
        for side, py in [("ours", a.ours_python),
                         ("theirs", a.trl_ppo_python if what == "ppo" else sys.executable)]:
            cmd = [py, __file__, "--side", side, "--what", what, "--work", str(work),
                   "--steps", str(a.steps), "--gguf", a.gguf]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                sys.exit(f"{side} {what} failed:\n{res.stderr[-4000:]}")
            row[side] = json.loads(res.stdout.strip().splitlines()[-1])
        key = next(iter(row["ours"]))
        o, t = row["ours"][key], row["theirs"][key]
        lengths = "".join(f"  {side} mean length {row[side]['mean_length']:.1f}" for side in row
                          if "mean_length" in row[side])
        if "whole_run_steps_per_s" in row["ours"]:
            wo, wt = row["ours"]["whole_run_steps_per_s"], row["theirs"]["whole_run_steps_per_s"]
            lengths += f"  (whole run: ours {wo:.3f} theirs {wt:.3f} ratio {wo / wt:.2f})"
        print(f"{what:12s} {key:13s} ours {o:9.3f}  theirs {t:9.3f}  ratio {o / t:5.2f}{lengths}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
