"""Sandwich: a workbench for aligning narrowly superhuman models.

The same core and Lua session as the ``sandwich`` command and the Jupyter kernel, from Python::

    import sandwich
    crowd = sandwich.read_csv("judgments.csv")            # a sandwich.DataFrame
    fit = sandwich.aggregate.dawid_skene(crowd)            # {"labels": DataFrame, ...}
    labels = polars.DataFrame(fit["labels"])               # zero-copy through Arrow

Every ``sw.<name>`` of the Lua API is ``sandwich.<name>`` here, with the same arguments: an
options table becomes keyword arguments (``sw.train.classify{model = m, ...}`` is
``sandwich.train.classify(model=m, ...)``), methods are called with a dot
(``m:predict(df)`` is ``m.predict(df)``), and each function's docstring is its Lua reference
page. DataFrames go out through the Arrow PyCapsule interface (``polars.DataFrame(x)``,
``pyarrow.table(x)``, ``x.to_polars()``) and come in from anything that exports it.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

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
)

__all__ = [
    "ConfigError", "DataError", "DataFrame", "Interrupted", "LuaObject", "ModelError",
    "SandwichError", "Session", "__version__", "session", "run", "experiment", "to_polars",
    "to_arrow",
]

_default: Session | None = None


def session() -> Session:
    """The module's default session, which ``sandwich.<name>`` functions run in."""
    global _default
    if _default is None:
        _default = Session()
    return _default


def run(path_or_code: str, args: Sequence[str] = ()) -> Any:
    """Runs a Lua script file (with ``arg``/``...`` set to ``args``) or a string of Lua code in
    the default session; returns the code's value (None for a file)."""
    if os.path.isfile(path_or_code):
        session().run_file(path_or_code, list(args))
        return None
    return session().eval(path_or_code)


def experiment(name: str, spec: dict[str, Any]) -> LuaObject:
    """``sw.experiment(name)(spec)``: an experiment declared from a dict (see the Lua page of
    ``sw.experiment``); ``.run()``, ``.pgr()``, ``.report(path)``, ``.save(dir)`` as in Lua."""
    return session().sw.experiment(name)(spec)


def to_polars(frame: Any) -> Any:
    """A sandwich.DataFrame as a polars.DataFrame, without copying."""
    import polars

    return polars.DataFrame(frame)


def to_arrow(frame: Any) -> Any:
    """A sandwich.DataFrame as a pyarrow.Table, without copying."""
    import pyarrow

    return pyarrow.table(frame)


def __getattr__(name: str) -> Any:
    # PEP 562: sandwich.aggregate, sandwich.read_csv, ... are sw's fields in the default session.
    if name.startswith("__"):
        raise AttributeError(name)
    sw = session().sw
    try:
        return getattr(sw, name)
    except AttributeError:
        raise AttributeError(f"module 'sandwich' has no attribute '{name}' (no sw.{name} in Lua)") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(dir(session().sw)))
