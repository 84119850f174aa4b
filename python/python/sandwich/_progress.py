"""Progress of long jobs (training, generation) reported by the core: a tqdm bar when tqdm is
installed, else one plain text line rewritten in place on stderr (at most 5 times a second)."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

try:  # tqdm.auto picks the notebook widget when one is available
    from tqdm.auto import tqdm as _tqdm  # type: ignore[import-untyped, unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    _tqdm = None


class _Plain:
    """The plain text bar's state."""

    job = ""
    total = 0
    last = 0.0


_bar: Optional[Any] = None
_plain = _Plain()


def start(job: str, total: int) -> None:
    global _bar
    if _tqdm is not None:
        _bar = _tqdm(total=total, desc=job, leave=False)
    else:
        _plain.job, _plain.total, _plain.last = job, total, 0.0


def update(done: int, info: str) -> None:
    if _bar is not None:
        _bar.n = done
        _bar.set_postfix_str(info, refresh=False)
        _bar.refresh()
        return
    now = time.monotonic()
    total = _plain.total or 1
    if now - _plain.last < 0.2 and done < total:
        return
    _plain.last = now
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\r{_plain.job} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {info}")
    sys.stderr.flush()


def finish() -> None:
    global _bar
    if _bar is not None:
        _bar.close()
        _bar = None
    elif _plain.total:
        sys.stderr.write("\n")
        _plain.total = 0
