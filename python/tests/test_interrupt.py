"""Ctrl-C stops a running Lua loop or a training run and raises sandwich.Interrupted."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, sandwich
    s = sandwich.Session()
    s.eval("x = 0")
    print("ready", flush=True)
    try:
        s.eval(sys.argv[1])
    except KeyboardInterrupt as e:
        print("interrupted", type(e).__name__, s.eval("x ~= nil"), flush=True)
    """
)


@pytest.mark.parametrize(
    "code",
    [
        "while true do x = x + 1 end",
        """
        local task = sw.tasks.builtin("sentiment", {n = 4000, seed = 1})
        local tok = os.tmpname() .. "-tok"; sw.tasks.tokenizer(task, tok)
        local m = sw.model.new{arch = "bert", tokenizer = tok, hidden_size = 64, num_labels = 2}
        sw.train.classify{model = m, data = task, text = "input", epochs = 50}
        """,
    ],
    ids=["lua-loop", "training"],
)
def test_ctrl_c_raises_interrupted_and_keeps_the_session(code):
    p = subprocess.Popen([sys.executable, "-c", SCRIPT, code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert out.strip() == "interrupted Interrupted True", out
