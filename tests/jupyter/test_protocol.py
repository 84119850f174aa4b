"""What jupyter_kernel_test does not cover, through the real jupyter_client: interrupts (a Lua
loop, a training run), the stdin round trip, update_display_data, a message with a bad signature,
shutdown and restart, a 5 MB display message, and a client that goes away mid-execution."""

import hashlib
import hmac
import time

import pytest
from jupyter_client.manager import start_new_kernel
from kernel_io import outputs, run, streams

TIMEOUT = 60


@pytest.fixture()
def kernel():
    km, kc = start_new_kernel(kernel_name="sandwich")
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def interrupt_after(km, kc, code, delay=1.0):
    msg_id = kc.execute(code)
    time.sleep(delay)
    start = time.time()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    took = time.time() - start
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply, took, outputs(kc, msg_id)


def test_interrupt_stops_a_loop_and_keeps_globals(kernel):
    km, kc = kernel
    run(kc, "kept = 41")
    reply, took, msgs = interrupt_after(km, kc, "while true do end")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Interrupted"
    assert took < 1.0, f"interrupt took {took:.2f} s"
    reply, msgs = run(kc, "kept + 1")
    assert reply["content"]["status"] == "ok"
    assert [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"] == ["42"]


def test_interrupt_stops_training(kernel):
    km, kc = kernel
    code = """
    local m = sw.model.new{arch = "gpt2", tokenizer = "%s", hidden_size = 32, layers = 1, heads = 2, seed = 1}
    local data = sw.frame{prompt = {"a", "b"}, completion = {" c", " d"}}
    sw.train.sft{model = m, data = data, epochs = 100000, batch_size = 2, lr = 1e-3}
    """ % (__import__("pathlib").Path(__file__).resolve().parents[2] / "workbooks" / "tokenizer")
    reply, took, _ = interrupt_after(km, kc, code, delay=2.0)
    assert reply["content"]["status"] == "error"
    assert took < 1.0, f"interrupt took {took:.2f} s"
    assert run(kc, "1 + 1")[0]["content"]["status"] == "ok"


def test_stdin_round_trip(kernel):
    km, kc = kernel
    msg_id = kc.execute('answer = sw.input("name? ") .. "!" ; line = io.read()', allow_stdin=True)
    for expected, value in [("name? ", "ada"), ("", "second line")]:
        req = kc.get_stdin_msg(timeout=TIMEOUT)
        assert req["msg_type"] == "input_request"
        assert req["content"]["prompt"] == expected
        kc.input(value)
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["content"]["status"] == "ok", reply["content"]
    outputs(kc, msg_id)
    _, msgs = run(kc, "answer .. '|' .. line")
    assert msgs[-1]["content"]["data"]["text/plain"] == 'ada!|second line'


def test_input_without_stdin_is_an_error(kernel):
    _, kc = kernel
    reply, _ = run(kc, "io.read()", allow_stdin=False)
    assert reply["content"]["status"] == "error"
    assert "allow_stdin" in reply["content"]["evalue"]


def test_update_display_data(kernel):
    _, kc = kernel
    reply, msgs = run(kc, 'sw.display.markdown("step 1", {id = "bar"}); sw.display.markdown("step 2", {id = "bar", update = true})')
    assert reply["content"]["status"] == "ok"
    kinds = [(m["msg_type"], m["content"].get("transient", {}).get("display_id")) for m in msgs]
    assert kinds == [("display_data", "bar"), ("update_display_data", "bar")]
    assert msgs[1]["content"]["data"]["text/markdown"] == "step 2"


def test_a_bad_signature_is_ignored(kernel):
    _, kc = kernel
    session = kc.session
    msg = session.msg("execute_request", {"code": "hacked = true", "silent": False, "store_history": True,
                                          "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    # Sign with the wrong key, then restore the client's own signer.
    auth = session.auth
    session.auth = hmac.HMAC(b"not the key", digestmod=hashlib.sha256)
    try:
        session.send(kc.shell_channel.socket, msg)
    finally:
        session.auth = auth
    time.sleep(0.5)
    reply, msgs = run(kc, "hacked == nil")
    assert msgs[-1]["content"]["data"]["text/plain"] == "true"


def test_large_display_message(kernel):
    _, kc = kernel
    reply, msgs = run(kc, 'sw.display.html(string.rep("x", 5 * 1024 * 1024))')
    assert reply["content"]["status"] == "ok"
    html = [m for m in msgs if m["msg_type"] == "display_data"][0]["content"]["data"]["text/html"]
    assert len(html) == 5 * 1024 * 1024


def test_shutdown_and_restart(kernel):
    km, kc = kernel
    run(kc, "x = 1")
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=TIMEOUT)
    reply, msgs = run(kc, "x == nil")
    assert msgs[-1]["content"]["data"]["text/plain"] == "true"
    # The history outlives the restart: the previous session's cell is there, one session back.
    kc.history(hist_access_type="range", session=-1, start=1, stop=2, output=False)
    hist = kc.get_shell_msg(timeout=TIMEOUT)["content"]["history"]
    assert [h[2] for h in hist] == ["x = 1"]
    kc.shutdown()
    reply = kc.control_channel.get_msg(timeout=TIMEOUT)
    assert reply["msg_type"] == "shutdown_reply"
    deadline = time.time() + 10
    while km.is_alive() and time.time() < deadline:
        time.sleep(0.1)
    assert not km.is_alive()


def test_client_disconnecting_mid_execution(kernel):
    km, kc = kernel
    kc.execute('local t = os.clock(); while os.clock() - t < 1 do end; print("done")')
    kc.stop_channels()
    time.sleep(1.5)
    kc2 = km.client()
    kc2.start_channels()
    kc2.wait_for_ready(timeout=TIMEOUT)
    reply, msgs = run(kc2, "2 * 21")
    assert msgs[-1]["content"]["data"]["text/plain"] == "42"
    kc2.stop_channels()


def test_training_shows_a_progress_bar_updated_in_place(kernel):
    _, kc = kernel
    tok = __import__("pathlib").Path(__file__).resolve().parents[2] / "workbooks" / "tokenizer"
    start = time.time()
    reply, msgs = run(kc, f"""
    local m = sw.model.new{{arch = "gpt2", tokenizer = "{tok}", hidden_size = 32, layers = 1, heads = 2, seed = 1}}
    local data = sw.frame{{prompt = {{"a", "b"}}, completion = {{" c", " d"}}}}
    sw.train.sft{{model = m, data = data, epochs = 300, batch_size = 2, lr = 1e-3}};
    """)
    took = time.time() - start
    assert reply["content"]["status"] == "ok", reply["content"]
    bars = [m for m in msgs if m["msg_type"] in ("display_data", "update_display_data")]
    assert bars[0]["msg_type"] == "display_data"
    ids = {m["content"]["transient"]["display_id"] for m in bars}
    assert len(ids) == 1 and ids.pop().startswith("sandwich-progress-")
    assert all(m["msg_type"] == "update_display_data" for m in bars[1:])
    assert "300/300" in bars[-1]["content"]["data"]["text/plain"]
    # Throttled: at most ten updates a second (plus the first and the last).
    assert len(bars) <= 10 * took + 2, (len(bars), took)


def test_stop_on_error_aborts_queued_cells(kernel):
    _, kc = kernel
    first = kc.execute('error("stop here")')
    second = kc.execute("ran = true")
    replies = {}
    for _ in range(2):
        r = kc.get_shell_msg(timeout=TIMEOUT)
        replies[r["parent_header"]["msg_id"]] = r["content"]["status"]
    assert replies == {first: "error", second: "aborted"}
    _, msgs = run(kc, "ran == nil")
    assert msgs[-1]["content"]["data"]["text/plain"] == "true"


def test_comms_without_targets(kernel):
    _, kc = kernel
    kc.comm_info()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["msg_type"] == "comm_info_reply"
    assert reply["content"] == {"status": "ok", "comms": {}}
    msg = kc.session.msg("comm_open", {"comm_id": "c1", "target_name": "nowhere", "data": {}})
    kc.shell_channel.send(msg)
    deadline = time.time() + 10
    while time.time() < deadline:
        m = kc.get_iopub_msg(timeout=10)
        if m["msg_type"] == "comm_close":
            assert m["content"]["comm_id"] == "c1"
            break
    else:
        raise AssertionError("no comm_close")


def test_silent_cells_publish_nothing_and_keep_the_count(kernel):
    _, kc = kernel
    reply, msgs = run(kc, 'print("visible")')
    count = reply["content"]["execution_count"]
    reply, msgs = run(kc, 'print("hidden"); 42', silent=True)
    assert msgs == []
    assert reply["content"]["execution_count"] == count


def test_errors_name_the_cell_and_line(kernel):
    _, kc = kernel
    reply, msgs = run(kc, 'local x = 1\nerror("boom")')
    errors = [m for m in msgs if m["msg_type"] == "error"]
    assert len(errors) == 1
    count = reply["content"]["execution_count"]
    assert f"In [{count}]:2" in "\n".join(errors[0]["content"]["traceback"])
    assert "boom" in errors[0]["content"]["evalue"]


def test_outputs_arrive_in_order_before_idle(kernel):
    _, kc = kernel
    msg_id = kc.execute('print("a"); io.write("b\\n"); io.stderr:write("c\\n"); sw.display.markdown("d")\n5')
    kinds = []
    while True:
        m = kc.get_iopub_msg(timeout=TIMEOUT)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        kinds.append((m["msg_type"], m["content"].get("name") or m["content"].get("execution_state")))
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    assert kinds == [("status", "busy"), ("execute_input", None), ("stream", "stdout"), ("stream", "stdout"),
                     ("stream", "stderr"), ("display_data", None), ("execute_result", None), ("status", "idle")]
    # Nothing for this request after its idle.
    time.sleep(0.3)
    while True:
        try:
            m = kc.get_iopub_msg(timeout=0.1)
        except Exception:
            break
        assert m["parent_header"].get("msg_id") != msg_id, m["msg_type"]


def test_a_question_mark_shows_the_page_as_markdown(kernel):
    _, kc = kernel
    reply, _ = run(kc, "sw.read_csv?")
    page = reply["content"]["payload"][0]["data"]
    # JupyterLab renders the markdown (headings, tables, code) rather than raw `#` and `|---|`.
    assert page["text/markdown"].startswith("# sw.read_csv") and "|---|" in page["text/markdown"]


def test_statements_then_an_expression_on_one_line_show_the_expression(kernel):
    _, kc = kernel
    _, msgs = run(kc, "print(1); 5")
    assert streams(msgs) == "1\n"
    results = [m for m in msgs if m["msg_type"] == "execute_result"]
    assert len(results) == 1 and results[0]["content"]["data"]["text/plain"] == "5"
