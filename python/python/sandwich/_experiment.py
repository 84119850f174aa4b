"""`sandwich.experiment`: `sw.experiment "name" {spec}` from Python — a spec as a dict or as a
Lua file that returns one — and `sandwich.experiment.rerun`. Written by hand (not generated):
the Lua call form `sw.experiment "name" {spec}` has no signature line to generate from."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, Tuple, cast

from ._native import DataFrame, LuaObject
from ._runtime import FrameLike, StrPath, call, session


class Experiment(Protocol):
    """A declared experiment (see `help(sandwich.experiment)`); methods as in Lua, with a dot."""

    def run(self) -> DataFrame:
        """Runs every arm and seed; `arm, seed, split, metric, value`."""
        ...

    def accuracy(self) -> DataFrame:
        """Test accuracy per arm: mean and sd over seeds."""
        ...

    def pgr(self, *, n_boot: int | None = None, seed: int | None = None) -> DataFrame:
        """`arm, pgr, lower, upper`: PGR with a two-stage bootstrap interval (seeds, then items)."""
        ...

    def supervision(self) -> DataFrame:
        """The crowd and assisted arms' supervision quality on B: `arm, metric, value`."""
        ...

    def report(self, path: StrPath | None = None) -> DataFrame:
        """Shows the tables and charts (in a notebook); with a path, also writes the HTML report."""
        ...

    def write_report(self, path: StrPath) -> str:
        """Writes the self-contained HTML report to `path`; returns the path."""
        ...

    def manifest(self) -> dict[str, Any]:
        """What reproduces the run: the spec as data, hashes, version, revision, device."""
        ...

    def save(self, dir: StrPath) -> None:
        """Writes `manifest.json`, `results.csv` and `report.html` to `dir`."""
        ...


_FROM_FILE = "return function(name, path) return sw.experiment(name)(dofile(path)) end"


class _Experiments:
    def __call__(self, name: str, spec: Mapping[str, Any] | StrPath) -> Experiment:
        """`sw.experiment(name)(spec)`: an experiment declared from a dict, or from a Lua file
        that returns the spec table (hooks and custom arms' `supervise` may then be Lua
        functions). Python callables work as hooks and `supervise` functions in a dict spec.
        The spec's keys are those of the Lua page, `sw.experiment` (in `sandwich.docs()`);
        a bad spec is a `ConfigError` naming the field, before any compute."""
        if isinstance(spec, Mapping):
            return cast(Experiment, session().sw.experiment(name)(dict(spec)))
        from_file = session().eval(_FROM_FILE)
        return cast(Experiment, from_file(name, spec))

    def rerun(
        self,
        dir: StrPath,
        *,
        task: FrameLike | None = None,
        supervise: Mapping[str, Callable[..., Any] | LuaObject] | None = None,
    ) -> Tuple[DataFrame, bool, Experiment]:
        """`sw.experiment.rerun`: reruns a saved experiment from `dir/manifest.json`; returns
        the new results, whether they equal the saved ones exactly, and the new experiment."""
        return cast(
            Tuple[DataFrame, bool, Experiment],
            call("experiment.rerun", dir, task=task, supervise=supervise),
        )


#: Declares an experiment: `sandwich.experiment(name, spec)`; `sandwich.experiment.rerun(dir)`.
experiment = _Experiments()
