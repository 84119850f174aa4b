"""Shared set-up for the kernel tests: the `sandwich` kernelspec must be installed where this
Python's jupyter_client looks (tests/run.sh installs it with `--sys-prefix` into the test venv),
and each test process gets its own history file."""

import os
import tempfile

os.environ.setdefault("SANDWICH_HISTORY", os.path.join(tempfile.mkdtemp(), "history.jsonl"))
