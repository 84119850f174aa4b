"""`sw.feedback`: real raters in the loop — a campaign, its web app, its judgments.

Written by hand (the call takes one table in Lua, its keys as keyword arguments here); the
reference is the Lua page ``sw.feedback.campaign`` (``help(sandwich.feedback.campaign)``)::

    c = sandwich.feedback.campaign("c.db", items=df, kind="label", choices=["neg", "pos"],
                                   raters=[{"id": "ann"}, {"id": "bo"}], overlap=2)
    url = c.serve(port=0)               # the web app runs in the background
    links = polars.DataFrame(c.links())  # rater, group, condition, url
    votes = c.judgments()                # task, worker, label, ... (crowd-kit's columns)
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Protocol, Sequence, cast

from ._native import DataFrame
from ._runtime import FrameLike, StrPath, session


class Campaign(Protocol):
    """A feedback campaign (a handle on the Lua object; methods as in Lua, with a dot)."""

    def serve(self, *, host: str | None = None, port: int | None = None, public_url: str | None = None) -> str:
        """Starts the web app in the background; returns its URL."""
        ...

    def stop(self) -> bool:
        """Stops the web app; whether it was running."""
        ...

    def url(self) -> str | None:
        """The web app's URL while it runs."""
        ...

    def links(self, *, base: str | None = None) -> DataFrame:
        """`rater, group, condition, url`: each rater's personal page."""
        ...

    def judgments(self) -> DataFrame:
        """Every judgment so far: `task, worker, label, ...` (crowd-kit's columns)."""
        ...

    def quality(self) -> DataFrame:
        """Per rater: gold accuracy, Krippendorff's alpha, Dawid-Skene skill, time, paused."""
        ...

    def export(self, path: StrPath) -> None:
        """Writes the judgments to a Parquet file."""
        ...

    def admin_token(self) -> str:
        """The token of the campaign's admin API."""
        ...


def campaign(
    path: StrPath,
    *,
    items: FrameLike | None = None,
    kind: str | None = None,
    name: str | None = None,
    choices: Sequence[str] | None = None,
    scale: int | None = None,
    candidates: Sequence[str] | None = None,
    show: Sequence[str] | None = None,
    instructions: str | None = None,
    overlap: int | None = None,
    gold: Mapping[str, Any] | None = None,
    conditions: Mapping[str, Mapping[str, Any]] | None = None,
    raters: Sequence[Mapping[str, str]] | None = None,
    groups: Mapping[str, str] | None = None,
    seed: int | None = None,
    lease_seconds: int | None = None,
) -> Campaign:
    """A feedback campaign in the SQLite file `path`: with `items` and a spec, a new one; with
    only `path`, the existing one, continued. See the Lua page `sw.feedback.campaign`
    (`sandwich.docs()`) for every key."""
    spec = {
        "items": items, "kind": kind, "name": name, "choices": choices, "scale": scale,
        "candidates": candidates, "show": show, "instructions": instructions, "overlap": overlap,
        "gold": gold, "conditions": conditions, "raters": raters, "groups": groups, "seed": seed,
        "lease_seconds": lease_seconds,
    }
    # Not `_runtime.call`: the spec has a key `name`, which is `call`'s first parameter.
    options = {k: v for k, v in spec.items() if v is not None}
    return cast("Campaign", session().sw.feedback.campaign(path=os.fspath(path), **options))
