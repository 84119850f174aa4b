"""Sweeps from Python: `exp.run(backend="local")` runs every task in `python -m sandwich sweep
run-task` processes and collects the numbers of a run in one process; `sandwich.experiment.
status` and `collect` read the sweep's directory; bad options are ConfigErrors naming them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars
import pytest

import sandwich

ARMS = """return {
  weak_hard = function(ctx)
    return ctx.weak_predictions:select{"id", sw.col("pred"):alias("label")}
  end,
}
"""


def _spec(arms_file: Path) -> dict:
    return {
        "task": {"builtin": "sentiment", "n": 160, "seed": 2},
        "strong": {"model": {"hidden_size": 16, "layers": 1, "heads": 2},
                   "train": {"epochs": 1, "batch_size": 16, "lr": 3e-3}},
        "weak": {"model": {"hidden_size": 8, "layers": 1, "heads": 2},
                 "train": {"epochs": 1, "batch_size": 16, "lr": 3e-3}},
        "arms": ["weak", "ceiling", "naive_w2s", "weak_hard"],
        "arms_file": str(arms_file),
        "seeds": [1, 2],
    }


def test_a_local_pool_from_python_equals_the_run_in_one_process(tmp_path: Path) -> None:
    (tmp_path / "arms.lua").write_text(ARMS)
    spec = _spec(tmp_path / "arms.lua")
    inline = polars.DataFrame(sandwich.experiment("py", spec).run(backend="inline"))
    exp = sandwich.experiment("py", spec)
    pooled = polars.DataFrame(exp.run(backend="local", dir=tmp_path / "pool", workers=2))
    assert pooled.height == 12  # 8 test accuracies, 4 label accuracies on B
    assert pooled.equals(inline)
    status = polars.DataFrame(sandwich.experiment.status(tmp_path / "pool"))
    assert status["state"].to_list() == ["done"] * 8
    assert status["arm"].to_list()[:4] == ["weak", "ceiling", "naive_w2s", "weak_hard"]
    again = sandwich.experiment.collect(tmp_path / "pool")
    assert polars.DataFrame(again.results()).equals(inline)
    assert polars.DataFrame(again.pgr())["arm"].to_list() == ["naive_w2s", "weak_hard"]
    # The command line of the wheel: a finished task is not run again.
    out = subprocess.run(
        [sys.executable, "-m", "sandwich", "sweep", "run-task", str(tmp_path / "pool"), "3"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0 and "already done" in out.stderr


def test_bad_run_options_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "arms.lua").write_text(ARMS)
    exp = sandwich.experiment("py", _spec(tmp_path / "arms.lua"))
    with pytest.raises(sandwich.ConfigError, match="'threads', which belongs to another backend"):
        exp.run(backend="slurm", dir=tmp_path / "s", threads=2)
    with pytest.raises(sandwich.ConfigError, match="inline, local or slurm"):
        exp.run(backend="ray")
    with pytest.raises(sandwich.ConfigError, match="'sbatch_args': expected a list"):
        exp.run(backend="slurm", dir=tmp_path / "s", sbatch_args="--requeue")
    with pytest.raises(sandwich.ConfigError, match="invalid argument 'poll'"):
        exp.run(backend="slurm", dir=tmp_path / "polled", poll=-1.0)
    assert not (tmp_path / "polled").exists()
    with pytest.raises(sandwich.ConfigError, match="spec.arms_file"):
        sandwich.experiment("py", _spec(tmp_path / "arms.lua") | {
            "arms": ["weak", {"name": "mine", "supervise": lambda ctx: None}]
        }).run(backend="local", dir=tmp_path / "p")
