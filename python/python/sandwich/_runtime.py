"""What the generated API stands on: `call` (a Lua function of the default session, by its
name under `sw`) and the argument types the signatures use."""

from __future__ import annotations

import os
from typing import Any, Protocol, Union

from ._native import LuaObject, Session

#: A path argument: a string or anything `os.fspath` takes (pathlib.Path, ...).
StrPath = Union[str, "os.PathLike[str]"]


class FrameLike(Protocol):
    """A DataFrame from anywhere: sandwich's own, or any object exporting the Arrow PyCapsule
    stream interface (polars, pyarrow, pandas ≥ 2.2 through pyarrow)."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...


_default: Session | None = None
_functions: dict[str, LuaObject] = {}


def session() -> Session:
    """The module's default session, which the `sandwich.<name>` functions run in."""
    global _default
    if _default is None:
        _default = Session()
    return _default


def call(name: str, *args: Any, **options: Any) -> Any:
    """Calls `sw.<name>` of the default session: positional arguments in order, the options
    that are set (not None: None means the Lua default) as its trailing options table."""
    f = _functions.get(name)
    if f is None:
        f = session().sw
        for part in name.split("."):
            f = getattr(f, part)
        _functions[name] = f
    return f(*args, **{k: v for k, v in options.items() if v is not None})
