"""`python -m sandwich sweep ACTION DIR ...`: the `sandwich sweep` command (one implementation,
in Rust) for a machine with the wheel but not the binary; a sweep started from Python runs its
tasks this way."""

from __future__ import annotations

import sys

from ._native import _sweep_main


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "sweep":
        print("usage: python -m sandwich sweep ACTION DIR ...  (python -m sandwich sweep --help)",
              file=sys.stderr)
        return 2
    return _sweep_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
