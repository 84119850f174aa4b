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
