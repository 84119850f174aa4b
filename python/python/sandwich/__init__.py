"""Sandwich: a workbench for aligning narrowly superhuman models.

The same core and Lua session as the ``sandwich`` command and the Jupyter kernel, from Python::

    import sandwich
    crowd = sandwich.read_csv("judgments.csv")            # a sandwich.DataFrame
    fit = sandwich.aggregate.dawid_skene(crowd)            # {"labels": DataFrame, ...}
    labels = polars.DataFrame(fit["labels"])               # zero-copy through Arrow

Every function is its Lua namesake: ``sw.aggregate.dawid_skene(data, {n_iter = 50})`` is
``sandwich.aggregate.dawid_skene(data, n_iter=50)`` — positional arguments in order, the options
table as keyword arguments (None: the default). Signatures, types and docstrings come from the
Lua reference pages (``python/generate_api.py``). Models and experiments are handles on the Lua
objects: ``m.predict(df)`` is ``m:predict(df)``. DataFrames go out through the Arrow PyCapsule
interface (``polars.DataFrame(x)``, ``pyarrow.table(x)``, ``x.to_polars()``) and come in from
anything that exports it. The Lua-language helpers Python has natively (``sw.col``/``sw.when``
expressions, ``sw.json``, ``sw.display``) are left out; ``sandwich.session().sw`` reaches
everything, untyped.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from . import aggregate, agreement, chart, feedback, metrics, model, overopt, overseers, tasks, train
from ._experiment import Experiment, experiment
from ._spec import ExperimentSpec
from ._functions import (
    about,
    best_of_n,
    concat,
    frame,
    lora,
    read_csv,
    read_ipc,
    read_json,
    read_parquet,
    scan_csv,
    scan_parquet,
)
from ._native import (
    ConfigError,
    DataError,
    DataFrame,
    Interrupted,
    LuaObject,
    ModelError,
    SandwichError,
    Session,
    __version__,
    docs,
)
from ._runtime import FrameLike, StrPath, session
from ._types import Chart, Model

__all__ = [
    # the session, errors and data types
    "Session", "session", "run", "DataFrame", "LuaObject", "FrameLike", "StrPath", "Model",
    "Chart", "Experiment", "ExperimentSpec", "SandwichError", "ConfigError", "DataError", "ModelError",
    "Interrupted", "__version__", "docs", "to_polars", "to_arrow",
    # the API, mirroring sw
    "aggregate", "agreement", "chart", "feedback", "metrics", "model", "overopt", "overseers", "tasks", "train",
    "experiment", "about", "best_of_n", "concat", "frame", "lora", "read_csv", "read_ipc", "read_json",
    "read_parquet", "scan_csv", "scan_parquet",
]


def run(path_or_code: str | os.PathLike[str], args: Sequence[str] = ()) -> Any:
    """Runs a Lua script file (with ``arg``/``...`` set to ``args``) or a string of Lua code in
    the default session; returns the code's value (None for a file)."""
    if os.path.isfile(path_or_code):
        session().run_file(path_or_code, list(args))
        return None
    return session().eval(os.fspath(path_or_code))


def to_polars(frame: FrameLike) -> Any:
    """A DataFrame as a polars.DataFrame, without copying."""
    import polars

    return polars.DataFrame(frame)


def to_arrow(frame: FrameLike) -> Any:
    """A DataFrame as a pyarrow.Table, without copying."""
    import pyarrow  # type: ignore[import-untyped, unused-ignore]

    return pyarrow.table(frame)
