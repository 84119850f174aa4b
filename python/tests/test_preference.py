"""Preference learning from Python: the same trainers as Lua (sw.train.reward / dpo, m:score),
their TRL metric columns, ensembles, and errors before any compute."""

import pathlib

import polars
import pytest

import sandwich

TOKENIZER = str(pathlib.Path(__file__).resolve().parents[2] / "workbooks" / "tokenizer")
PREFS = polars.DataFrame(
    {
        "prompt": ["Review:"] * 4,
        "chosen": [" great film", " loved it", " wonderful acting", " great fun"],
        "rejected": [" awful film", " hated it", " terrible acting", " awful fun"],
    }
)


def tiny(head: str = "lm", seed: int = 1) -> sandwich.model.Model:
    return sandwich.model.new(arch="gpt2", tokenizer=TOKENIZER, hidden_size=32, heads=4,
                              head=head, seed=seed)


def test_reward_model_learns_the_pairs_and_scores_with_an_ensemble() -> None:
    rm = tiny("scalar")
    metrics = sandwich.train.reward(model=rm, data=PREFS, epochs=20, batch_size=4,
                                    lr=3e-3).to_polars()
    for name in ["accuracy", "margin", "min_reward", "mean_reward", "max_reward"]:
        assert name in metrics.columns
    assert metrics["loss"][-1] < metrics["loss"][0]
    assert metrics["accuracy"][-1] == 1.0
    rows = polars.DataFrame({"prompt": ["Review:"] * 2, "completion": [" great film", " awful film"]})
    scored = rm.score(rows).to_polars()
    assert scored["score"][0] > scored["score"][1]
    both = rm.score(rows, ensemble=[tiny("scalar", 2)]).to_polars()
    assert both.columns[-4:] == ["score", "score_std", "score_1", "score_2"]
    assert both["score_1"].to_list() == scored["score"].to_list()


def test_dpo_raises_the_chosen_log_probability() -> None:
    policy = tiny()
    probe = polars.DataFrame({"prompt": ["Review:"], "completion": [" loved it"]})
    before = policy.logprobs(probe).to_polars()["logprob"][0]
    metrics = sandwich.train.dpo(model=policy, data=PREFS, beta=0.5, epochs=10, batch_size=4,
                                 lr=3e-3, loss="ipo").to_polars()
    assert "rewards/margins" in metrics.columns
    assert metrics["rewards/accuracies"][-1] == 1.0
    assert policy.logprobs(probe).to_polars()["logprob"][0] > before


def test_bad_preference_input_is_an_error_before_compute() -> None:
    with pytest.raises(sandwich.SandwichError, match="scalar"):
        sandwich.train.reward(model=tiny(), data=PREFS)
    with pytest.raises(sandwich.SandwichError, match="'rejected'"):
        sandwich.train.dpo(model=tiny(), data=PREFS.drop("rejected"))
    with pytest.raises(sandwich.SandwichError, match="label_smoothing"):
        sandwich.train.dpo(model=tiny(), data=PREFS, loss="hinge", label_smoothing=0.1)


def share_of_a(prompts: list[str], completions: list[str]) -> list[float]:
    return [c.count("a") / max(len(c), 1) for c in completions]


def test_grpo_with_a_python_reward_and_best_of_n() -> None:
    policy = tiny(seed=2)
    metrics = sandwich.train.grpo(model=policy, prompts=["Say:", "Tell:"], reward=share_of_a,
                                  steps=3, prompts_per_step=2, num_generations=4,
                                  max_new_tokens=6, lr=1e-2).to_polars()
    for name in ["reward", "reward_std", "frac_reward_zero_std", "kl", "entropy",
                 "clip_ratio/region_mean", "completions/mean_length", "completions/clipped_ratio"]:
        assert name in metrics.columns
    assert metrics.height == 3
    best = sandwich.best_of_n(model=policy, prompts=["Say:"], reward=[share_of_a, tiny("scalar")],
                              reward_names=["rule", "rm"], n=4, max_new_tokens=6).to_polars()
    assert best.columns == ["prompt", "completion", "rule", "rm", "n", "kl_bon", "kl_measured"]
    with pytest.raises(sandwich.SandwichError, match="num_generations"):
        sandwich.train.rloo(model=policy, prompts=["x"], reward=share_of_a, num_generations=1)


def test_ppo_learns_a_python_reward_with_a_value_head() -> None:
    policy = tiny(seed=2)
    metrics = sandwich.train.ppo(model=policy, prompts=["Say:", "Tell:", "Write:", "Go:"],
                                 reward=share_of_a, steps=30, max_new_tokens=8, temperature=1.0,
                                 lr=1e-2, beta=0.0).to_polars()
    for name in ["objective/kl", "objective/scores", "objective/rlhf_reward",
                 "objective/non_score_reward", "policy/approxkl_avg", "policy/clipfrac_avg",
                 "policy/entropy_avg", "val/ratio", "loss/value_avg", "beta"]:
        assert name in metrics.columns
    scores = metrics["objective/scores"]
    assert scores[-3:].mean() > 2 * scores[:3].mean()
    with pytest.raises(sandwich.SandwichError, match="scalar"):
        sandwich.train.ppo(model=policy, value=tiny(), prompts=["x"], reward=share_of_a)
    with pytest.raises(sandwich.SandwichError, match="num_mini_batches"):
        sandwich.train.ppo(model=policy, prompts=["x"], reward=share_of_a, num_mini_batches=3)
