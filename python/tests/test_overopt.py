"""sandwich.overopt from Python: the same fit as Lua, against scipy's fixture values."""

import json
import pathlib

import polars as pl
import pytest

import sandwich

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "parity" / "fixtures"


def test_fit_matches_scipy_on_the_fixtures():
    for case in json.loads((FIXTURES / "overopt.json").read_text()):
        df = pl.DataFrame({"d": case["d"], "gold": case["reward"]})
        f = sandwich.overopt.fit(data=df, reward="gold", form=case["form"])
        assert f["alpha"] == pytest.approx(case["alpha"], abs=1e-6)
        assert f["beta"] == pytest.approx(case["beta"], abs=1e-6)
        assert f["beta_lower"] == pytest.approx(case["beta_ci"][0], abs=1e-6)
        assert f["n"] == len(case["d"])


def test_bad_form_and_unknown_keys_are_named():
    df = pl.DataFrame({"d": [0.0, 1.0, 2.0], "gold": [0.0, 0.5, 0.2]})
    with pytest.raises(sandwich.SandwichError, match="'bon' or 'rl'"):
        sandwich.overopt.fit(data=df, reward="gold", form="ppo")
    with pytest.raises(sandwich.SandwichError, match="column 'kl'"):
        sandwich.overopt.fit(data=df, reward="gold", form="bon", d="kl")


TOKENIZER = pathlib.Path(__file__).resolve().parents[2] / "workbooks" / "tokenizer"


def words(prompts: list[str], completions: list[str]) -> list[float]:
    return [float(len(c.split())) for c in completions]


def test_the_task_its_gold_reward_and_biased_judges() -> None:
    corpus = sandwich.overopt.task(n=50, seed=1).to_polars()
    assert corpus.columns == ["prompt", "completion", "gold"]
    assert sandwich.overopt.gold(corpus["prompt"].to_list(), corpus["completion"].to_list()) == pytest.approx(
        corpus["gold"].to_list())
    pairs = sandwich.overopt.pairs(n=40, seed=2)
    judged = sandwich.overseers.simulate_pairwise(pairs=pairs, k=1, seed=3, overseers=[
        {"id": "buzz", "accuracy": 1.0, "bias": "keyword", "keyword": "masterpiece", "bias_strength": 1.0}]).to_polars()
    assert judged.columns[:4] == ["worker", "left", "right", "label"] and "prompt" in judged.columns
    # A fully swayed judge picks the side with the buzzword whenever only one side has it.
    for row in judged.iter_rows(named=True):
        has = ["masterpiece" in row["left"].split(), "masterpiece" in row["right"].split()]
        if has[0] != has[1]:
            assert row["label"] == (row["left"] if has[0] else row["right"])


def test_best_of_n_and_rl_curves_from_python() -> None:
    policy = sandwich.model.new(arch="llama", tokenizer=str(TOKENIZER), hidden_size=32, heads=4, seed=3)
    curve = sandwich.overopt.best_of_n(model=policy, prompts=["Review a musical:"], proxy=words,
                                       gold=sandwich.overopt.gold, n=[1, 4, 8], max_new_tokens=12,
                                       seed=1).to_polars()
    assert curve["n"].to_list() == [1, 4, 8]
    assert curve["proxy"][2] >= curve["proxy"][0]
    assert curve["gold_gain"][0] == 0.0
    with pytest.raises(sandwich.SandwichError, match="pool"):
        sandwich.overopt.best_of_n(model=policy, prompts=["x"], proxy=words, gold=words, n=8, pool=4)
    rl = sandwich.overopt.rl(method="rloo", proxy=words, gold=sandwich.overopt.gold, model=policy,
                             prompts=["Say:", "Go:"], steps=3, prompts_per_step=2, num_generations=2,
                             max_new_tokens=6, lr=1e-3).to_polars()
    assert rl.height == 3 and rl["d"][0] == 0.0
    assert {"proxy", "gold", "proxy_gain", "gold_gain", "rewards/proxy"} <= set(rl.columns)


def test_the_preference_sandwich_runs_on_the_engine_from_python() -> None:
    tiny = {"arch": "llama", "hidden_size": 32, "layers": 2, "heads": 4}
    exp = sandwich.experiment.preference("tiny", {
        "task": {"pairs": 80, "corpus": 120},
        "policy": {"model": tiny, "train": {"epochs": 1, "batch_size": 32, "lr": 3e-3}},
        "reward_model": {"model": tiny, "train": {"epochs": 1, "batch_size": 32, "lr": 1e-3}},
        "weak_pairs": 16,
        "overseers": {"novices": {"k": 3, "overseers": [
            {"id": "n1", "accuracy": 0.7}, {"id": "n2", "accuracy": 0.7},
            {"id": "n3", "accuracy": 0.7, "bias": "longer", "bias_strength": 0.3}]}},
        "arms": ["weak", "ceiling", "crowd_bradley_terry"],
        "seeds": [1, 2],
        "best_of_n": {"n": 4, "pool": 8, "repeats": 1, "max_new_tokens": 12},
        "rl": {"steps": 2, "num_generations": 2, "batch_size": 32, "lr": 1e-4, "beta": 0.02,
               "max_new_tokens": 12, "tail": 2},
    })
    results = exp.run().to_polars()
    assert results.height == 3 * 2 * 3
    assert set(results["metric"]) == {"label_accuracy", "bon_gold", "rl_gold"}
    ceiling = results.filter((pl.col("arm") == "ceiling") & (pl.col("metric") == "label_accuracy"))
    assert ceiling["value"].to_list() == [1.0, 1.0]
    pgr = exp.pgr({"metric": "rl_gold"}).to_polars()
    assert pgr["arm"].to_list() == ["crowd_bradley_terry"]
    assert pgr["seeds"].to_list() == [2]
    assert exp.curves().to_polars().height == 3 * 2 * 2
    with pytest.raises(sandwich.SandwichError, match="arm names among"):
        sandwich.experiment.preference("bad", {"policy": {"model": tiny}, "reward_model": {"model": tiny},
                                               "arms": ["weak", "ceiling", "crowd_majority"]})
