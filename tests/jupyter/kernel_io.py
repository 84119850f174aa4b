"""Helpers shared by the kernel tests: run a cell through jupyter_client and collect what its
request published on iopub, up to its idle."""

import time


def outputs(kc, msg_id, timeout=60):
    """iopub messages of one request (execute_input and status left out), up to its idle."""
    out = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                return out
            continue
        if msg["msg_type"] != "execute_input":
            out.append(msg)
    raise AssertionError("no idle")


def run(kc, code, timeout=60, **kw):
    """Executes `code`; returns its shell reply and its iopub outputs."""
    msg_id = kc.execute(code, **kw)
    reply = kc.get_shell_msg(timeout=timeout)
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply, outputs(kc, msg_id, timeout)


def streams(msgs):
    """The text of every stream message, in order."""
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
