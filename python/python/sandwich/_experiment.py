"""`sandwich.experiment`: an experiment from a typed spec (`sandwich.ExperimentSpec`, a dict),
run by the core directly — no Lua involved — or from a Lua file that returns the spec table
(then through the Lua session, hooks and custom arms in Lua); and `sandwich.experiment.rerun`.
Written by hand: `sw.experiment "name" {spec}` has no signature line to generate from."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping, Protocol, Sequence, Tuple, cast

from . import _display
from ._native import DataFrame, LuaObject, _experiment, _rerun, _sweep_collect, _sweep_status
from ._runtime import FrameLike, StrPath, call, session
from ._spec import ExperimentSpec


class Experiment(Protocol):
    """A declared experiment (the Lua page `sw.experiment` explains each method)."""

    def run(
        self,
        *,
        backend: str | None = None,
        dir: StrPath | None = None,
        workers: int | None = None,
        threads: int | None = None,
        wait: bool | None = None,
        poll: float | None = None,
        partition: str | None = None,
        gres: str | None = None,
        time: str | None = None,
        array_parallelism: int | None = None,
        cpus_per_task: int | None = None,
        mem: str | None = None,
        account: str | None = None,
        qos: str | None = None,
        sbatch_args: Sequence[str] | None = None,
    ) -> DataFrame:
        """Runs every arm and seed; `arm, seed, split, metric, value`. The options are
        `exp:run{}`'s (the Lua page `sw.experiment`, "Sweeps"): `backend` ("inline", "local" or
        "slurm"), the sweep's `dir`, the local pool's `workers` and `threads`, and Slurm's
        `partition`, `gres`, `time`, `array_parallelism`, `cpus_per_task`, `mem`, `account`,
        `qos`, `sbatch_args`, `wait` and `poll`. Slurm with `wait=False` returns the sweep's
        task table right after submission."""
        ...

    def results(self) -> DataFrame:
        """The results of `run()`."""
        ...

    def accuracy(self) -> DataFrame:
        """`arm, accuracy, sd, seeds, note`: test accuracy per arm over seeds, spec order."""
        ...

    def pgr(self, baseline: str | None = None) -> DataFrame:
        """`arm, pgr, lower, upper, seeds, inverted_seeds, note`: PGR over seeds with
        Fieller's interval; `baseline` measures the gap from another arm than `weak`."""
        ...

    def compare(self, a: str, b: str) -> DataFrame:
        """The paired difference a − b over seeds (accuracy and PGR) with intervals."""
        ...

    def supervision(self) -> DataFrame:
        """Each arm's supervision quality on B: `arm, metric, mean`."""
        ...

    def report(self, path: StrPath | None = None) -> DataFrame:
        """Shows the report (in a notebook); with a path, also writes it as HTML."""
        ...

    def write_report(self, path: StrPath) -> str:
        """Writes the self-contained HTML report to `path`; returns the path."""
        ...

    def manifest(self) -> dict[str, Any]:
        """What reproduces the run: the spec, hashes, version, revision, device."""
        ...

    def save(self, dir: StrPath) -> str:
        """Writes manifest.json, results.csv, items.csv, curves.csv and report.html."""
        ...


class _CoreExperiment:
    """An experiment run by the core (`sandwich._native.Experiment`), with Python conveniences."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def __repr__(self) -> str:
        return cast(str, self._native.__repr__())

    def run(
        self,
        *,
        backend: str | None = None,
        dir: StrPath | None = None,
        workers: int | None = None,
        threads: int | None = None,
        wait: bool | None = None,
        poll: float | None = None,
        partition: str | None = None,
        gres: str | None = None,
        time: str | None = None,
        array_parallelism: int | None = None,
        cpus_per_task: int | None = None,
        mem: str | None = None,
        account: str | None = None,
        qos: str | None = None,
        sbatch_args: Sequence[str] | None = None,
    ) -> DataFrame:
        if isinstance(sbatch_args, str):
            from ._native import ConfigError

            raise ConfigError(
                "Experiment.run: bad option 'sbatch_args': expected a list of arguments, "
                f"got the string {sbatch_args!r}"
            )
        options: dict[str, Any] = {
            "backend": backend, "dir": os.fspath(dir) if dir is not None else None,
            "workers": workers, "threads": threads, "wait": wait, "poll": poll,
            "partition": partition, "gres": gres, "time": time,
            "array_parallelism": array_parallelism, "cpus_per_task": cpus_per_task, "mem": mem,
            "account": account, "qos": qos,
            "sbatch_args": list(sbatch_args) if sbatch_args is not None else None,
        }
        given = {k: v for k, v in options.items() if v is not None}
        return cast(DataFrame, self._native.run(json.dumps(given) if given else None))

    def results(self) -> DataFrame:
        return cast(DataFrame, self._native.results())

    def items(self) -> DataFrame | None:
        return cast("DataFrame | None", self._native.items())

    def curves(self) -> DataFrame | None:
        return cast("DataFrame | None", self._native.curves())

    def accuracy(self) -> DataFrame:
        return cast(DataFrame, self._native.accuracy())

    def pgr(self, baseline: str | None = None) -> DataFrame:
        return cast(DataFrame, self._native.pgr(baseline))

    def compare(self, a: str, b: str) -> DataFrame:
        return cast(DataFrame, self._native.compare(a, b))

    def supervision(self) -> DataFrame:
        return cast(DataFrame, self._native.supervision())

    def report(self, path: StrPath | None = None) -> DataFrame:
        # One renderer: the core's report, as HTML in a notebook and as text elsewhere.
        if path is not None:
            self.write_report(path)
        html, text = self._native.report()
        _display.show({"text/html": html, "text/plain": text}, None, False)
        return self.pgr()

    def write_report(self, path: StrPath) -> str:
        return cast(str, self._native.write_report(os.fspath(path)))

    def manifest(self) -> dict[str, Any]:
        return cast("dict[str, Any]", json.loads(self._native.manifest_json()))

    def save(self, dir: StrPath) -> str:
        return cast(str, self._native.save(os.fspath(dir)))


def _split(spec: Mapping[str, Any]) -> tuple[str, Any, dict[str, Callable[..., Any]], dict[str, Any]]:
    """The spec as JSON for the core, and what cannot be JSON: the task frame, custom arms'
    callables, hooks."""
    data = dict(spec)
    task = data.get("task")
    frame = None
    if task is not None and not isinstance(task, Mapping):
        frame, data["task"] = task, {}
    supervise: dict[str, Callable[..., Any]] = {}
    arms = []
    for i, arm in enumerate(data.get("arms", [])):
        if isinstance(arm, Mapping):
            unknown = set(arm) - {"name", "supervise"}
            if unknown or not callable(arm.get("supervise")) or not isinstance(arm.get("name"), str):
                from ._native import ConfigError

                raise ConfigError(
                    f"sandwich.experiment: bad spec field 'spec.arms[{i + 1}]': expected "
                    f"{{'name': str, 'supervise': callable}}, got keys {sorted(arm)}"
                )
            supervise[arm["name"]] = arm["supervise"]
            arms.append(arm["name"])
        else:
            arms.append(arm)
    if "arms" in data:
        data["arms"] = arms
    hooks = dict(data.pop("hooks", None) or {})
    return json.dumps(data), frame, supervise, hooks


class _Experiments:
    def __call__(self, name: str, spec: ExperimentSpec | Mapping[str, Any] | StrPath) -> Experiment:
        """An experiment from a typed spec (`sandwich.ExperimentSpec`: the keys of the Lua
        page `sw.experiment`), run by the core; or from a Lua file that returns the spec table
        (hooks and custom arms' `supervise` may then be Lua functions). Python callables work as
        hooks and `supervise` functions in a dict spec. A bad spec is a `ConfigError` naming the
        field (`spec.aux.warmup`), before any compute."""
        if isinstance(spec, Mapping):
            text, frame, supervise, hooks = _split(spec)
            unknown = set(hooks) - {"on_step", "on_arm_done"}
            if unknown:
                from ._native import ConfigError

                raise ConfigError(
                    f"sandwich.experiment: bad spec field 'spec.hooks.{sorted(unknown)[0]}': "
                    "expected one of on_arm_done, on_step"
                )
            native = _experiment(
                name, text, frame, supervise, hooks.get("on_step"), hooks.get("on_arm_done")
            )
            return _CoreExperiment(native)
        from_file = session().eval(
            "return function(name, path) return sw.experiment(name)(dofile(path)) end"
        )
        return cast(Experiment, from_file(name, os.fspath(spec)))

    def rerun(
        self,
        dir: StrPath,
        *,
        task: FrameLike | None = None,
        supervise: Mapping[str, Callable[..., Any] | LuaObject] | None = None,
    ) -> Tuple[DataFrame, bool, Experiment]:
        """Reruns a saved experiment from `dir/manifest.json`; returns the new results, whether
        they equal the saved ones exactly, and the new experiment."""
        results, identical, native = _rerun(os.fspath(dir), task, dict(supervise or {}))
        return results, identical, _CoreExperiment(native)

    def collect(self, dir: StrPath) -> Experiment:
        """The experiment of the sweep in `dir` with every task's shard put together: the
        results, PGR table and report a run in one process gives (every task must be done)."""
        return _CoreExperiment(_sweep_collect(os.fspath(dir)))

    def status(self, dir: StrPath) -> DataFrame:
        """The sweep's tasks: `index, seed, arm, state, job, message` (state: done, queued,
        running, failed or missing)."""
        return _sweep_status(os.fspath(dir))

    def pgr(
        self,
        results: FrameLike,
        *,
        metric: str,
        baseline: str | None = None,
        ceiling: str | None = None,
        split: str | None = None,
        arms: Sequence[str] | None = None,
        level: float | None = None,
    ) -> DataFrame:
        """PGR with the engine's Fieller intervals from a long results frame `arm, seed, metric,
        value` (the Lua page `sw.experiment.pgr`): for experiments whose arms measure something
        other than test accuracy, such as the gold reward of a policy optimised against each
        overseer's reward model."""
        return cast(DataFrame, call("experiment.pgr", results, metric=metric, baseline=baseline,
                                    ceiling=ceiling, split=split, arms=arms, level=level))

    def preference(self, name: str, spec: Mapping[str, Any]) -> LuaObject:
        """The sandwich of preferences on the experiment engine (the Lua page
        `sw.experiment.preference`): every arm's verdicts on the built-in review task's pairs
        train a reward model, the policy is optimised against it (best-of-n; GRPO or RLOO with
        `rl`) and scored by the gold reward. Returns the experiment: `.run()` gives the results
        `arm, seed, split, metric, value`, `.pgr({"metric": "rl_gold"})` PGR with intervals,
        `.curves()` the RL runs, `.write_campaign({"path": ...})` a `sandwich serve` campaign of
        its pairs for the arm `raters`. The spec is checked (unknown keys included) before any
        compute."""
        return cast(LuaObject, call("experiment.preference", name)(dict(spec)))


#: Declares an experiment: `sandwich.experiment(name, spec)`; `sandwich.experiment.rerun(dir)`.
experiment = _Experiments()
