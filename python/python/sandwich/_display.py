"""Displays from Lua — `sw.display`, an experiment's `report()`, charts — in Python: through
IPython's display machinery when IPython runs (a notebook shows tables as HTML and charts as
vega-lite), else as text on stdout, as `print` would."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Optional


def _in_ipython() -> bool:
    ipython = sys.modules.get("IPython")
    return ipython is not None and ipython.get_ipython() is not None


def _ipython_display() -> Any:
    # IPython's display functions are untyped: used as Any rather than silencing mypy here.
    return importlib.import_module("IPython.display")


def show(bundle: dict[str, Any], id: Optional[str], update: bool) -> None:
    if not _in_ipython():
        sys.stdout.write(f"{bundle.get('text/plain', '')}\n")
        return
    ipd = _ipython_display()
    if update and id is not None:
        ipd.update_display(bundle, raw=True, display_id=id)
    else:
        ipd.display(bundle, raw=True, display_id=id)


def clear(wait: bool) -> None:
    if _in_ipython():
        _ipython_display().clear_output(wait=wait)
