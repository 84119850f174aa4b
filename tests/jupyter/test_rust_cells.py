"""`%%rust` cells through the real jupyter_client: evcxr's semantics (items persist, a trailing
expression is displayed, `:dep`), data both ways between Lua and Rust, a Rust function called
from Lua (a bootstrap statistic), compile errors naming the cell's line, streams, and an
interrupted Rust loop that leaves the kernel usable. One kernel for the module: the first Rust
cell starts evcxr (seconds), later ones reuse it."""

import time

import pytest
from jupyter_client.manager import start_new_kernel

import kernel_io

TIMEOUT = 180


@pytest.fixture(scope="module")
def kernel():
    km, kc = start_new_kernel(kernel_name="sandwich", startup_timeout=60)
    reply, msgs = run(kc, "%%rust\n1 + 1")
    if reply["content"].get("ename") == "RustCellsUnavailable":
        pytest.fail("the kernel was built without the rust-cells feature")
    assert reply["content"]["status"] == "ok", reply["content"]
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def run(kc, code):
    return kernel_io.run(kc, code, timeout=TIMEOUT)


def ok(kc, code):
    reply, msgs = run(kc, code)
    assert reply["content"]["status"] == "ok", (reply["content"].get("evalue"), reply["content"].get("traceback"))
    return msgs


def results(msgs):
    return [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"]


def stream(msgs, name):
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)


def test_items_persist_and_a_trailing_expression_is_displayed(kernel):
    _, kc = kernel
    msgs = ok(kc, "%%rust\nfn triple(x: i64) -> i64 { x * 3 }\nlet base: i64 = 14;")
    assert results(msgs) == []
    msgs = ok(kc, '%%rust\nprintln!("tripling {}", base);\neprintln!("to stderr");\ntriple(base)')
    assert results(msgs) == ["42"]
    assert stream(msgs, "stdout") == "tripling 14\n"
    assert stream(msgs, "stderr") == "to stderr\n"
    # Lua cells go on beside Rust ones.
    assert results(ok(kc, "1 + 1")) == ["2"]


def test_evcxr_mime_output_is_display_data(kernel):
    _, kc = kernel
    msgs = ok(kc, """%%rust
struct Badge(f64);
impl Badge {
    fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/html\n<b>{}</b>\nEVCXR_END_CONTENT", self.0);
    }
}
Badge(0.5)
""")
    shown = [m["content"]["data"] for m in msgs if m["msg_type"] == "display_data"]
    assert shown == [{"text/html": "<b>0.5</b>"}]
    assert results(msgs) == []


def test_a_frame_made_in_lua_is_summarised_in_rust_and_read_back_in_lua(kernel):
    _, kc = kernel
    ok(kc, """
crowd = sw.frame{item = {"a", "a", "a", "b", "b", "c"}, label = {1, 1, 0, 0, 0, 1}}
sw.rust.set("crowd", crowd)
""")
    ok(kc, """%%rust
use sandwich::prelude::*;
let crowd: DataFrame = sandwich::get("crowd")?;
let per_item: DataFrame = crowd
    .lazy()
    .group_by([col("item")])
    .agg([col("label").cast(DataType::Float64).mean().alias("share"), len().alias("n")])
    .sort(["item"], Default::default())
    .collect()?;
sandwich::set("per_item", &per_item)?;
""")
    msgs = ok(kc, """
local s = sw.rust.get("per_item")
local rows = {}
for _, r in ipairs(s:to_records()) do rows[#rows + 1] = string.format("%s %.4f %d", r.item, r.share, r.n) end
print(table.concat(rows, "; "))
""")
    assert stream(msgs, "stdout") == "a 0.6667 3; b 0.0000 2; c 1.0000 1\n"
    # The engine is there too: sandwich-core's Krippendorff's alpha, from Rust, equals Lua's.
    ok(kc, """
ratings = sw.frame{task = {1, 1, 2, 2, 2, 3, 3, 4}, worker = {"a", "b", "a", "b", "c", "a", "c", "b"},
                   label = {1, 1, 2, 3, 2, 4, 4, 5}}
sw.rust.set("ratings", ratings)
""")
    msgs = ok(kc, """%%rust
use sandwich::sandwich_core::oversight::{krippendorff_alpha, Level};
let names: Vec<String> = sandwich::names()?;
let alpha: f64 = krippendorff_alpha(&sandwich::get("ratings")?, Level::Ordinal)?;
format!("{} {:.12}", names.join(","), alpha)
""")
    (shown,) = results(msgs)
    rust_names, rust_alpha = shown.strip('"').split()
    assert rust_names == "crowd,per_item,ratings"
    msgs = ok(kc, 'print(string.format("%.12f", sw.agreement.krippendorff_alpha(ratings, {level = "ordinal"})))')
    assert stream(msgs, "stdout").strip() == rust_alpha


def test_a_rust_function_is_a_bootstrap_statistic_in_lua(kernel):
    _, kc = kernel
    ok(kc, """%%rust
use sandwich::prelude::*;
sandwich::export("trimmed_mean", |args| {
    let x = args.frame(0)?.column("x")?.cast(&DataType::Float64)?;
    let mut x: Vec<f64> = x.f64()?.into_no_null_iter().collect();
    x.sort_by(f64::total_cmp);
    let cut = x.len() / 10;
    let kept = &x[cut..x.len() - cut];
    Ok(kept.iter().sum::<f64>() / kept.len() as f64)
})?;
""")
    msgs = ok(kc, """
local xs = {}
for i = 1, 200 do xs[i] = (i * 37 % 101) / 10 end
local d = sw.frame{x = xs}
local function trimmed_mean(s)
  local v = s:column("x")
  table.sort(v)
  local cut = #v // 10
  local sum = 0
  for i = cut + 1, #v - cut do sum = sum + v[i] end
  return sum / (#v - 2 * cut)
end
local opts = {data = d, n_boot = 200, seed = 5}
opts.statistic = sw.rust.fn("trimmed_mean")
local rust = sw.metrics.bootstrap(opts)
opts.statistic = trimmed_mean
local lua = sw.metrics.bootstrap(opts)
print(string.format("%.9f %.9f %.9f", rust.estimate, rust.lower, rust.upper))
print(string.format("%.9f %.9f %.9f", lua.estimate, lua.lower, lua.upper))
print(sw.rust.fn("trimmed_mean")(sw.frame{x = {1, 2, 3}}))
""")
    rust, lua, small = stream(msgs, "stdout").splitlines()
    assert rust == lua
    assert float(small) == 2.0
    reply, msgs = run(kc, 'sw.rust.fn("trimmed_mean")(3)')
    assert reply["content"]["status"] == "error"
    assert "trimmed_mean: argument 1 should be a DataFrame" in reply["content"]["evalue"]
    reply, _ = run(kc, 'sw.rust.fn("nope")')
    assert "exported: trimmed_mean" in reply["content"]["evalue"]


def test_a_compile_error_names_the_line_of_the_cell(kernel):
    _, kc = kernel
    reply, msgs = run(kc, '%%rust\nlet a: i64 = 1;\nlet b: i64 = "two";\na + b')
    c = reply["content"]
    assert c["status"] == "error" and c["ename"] == "CompileError", c
    assert c["evalue"].startswith("error[E0308] on line 3: mismatched types"), c["evalue"]
    tb = "\n".join(c["traceback"])
    assert '   3 | let b: i64 = "two";' in tb, tb
    errors = [m for m in msgs if m["msg_type"] == "error"]
    assert len(errors) == 1


def test_dep_lines_build_a_crate_from_the_local_cache(kernel):
    _, kc = kernel
    msgs = ok(kc, '%%rust\n:dep itoa = "1"\nlet mut buf = itoa::Buffer::new();\nbuf.format(1234).to_string()')
    assert results(msgs) == ['"1234"']


def test_an_interrupted_rust_loop_leaves_the_kernel_usable(kernel):
    km, kc = kernel
    ok(kc, "kept = 41")
    msg_id = kc.execute("%%rust\nlet mut i: u64 = 0;\nloop { i = i.wrapping_add(1); }")
    time.sleep(4.0)  # compiled and running
    start = time.time()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    took = time.time() - start
    kernel_io.outputs(kc, msg_id, TIMEOUT)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Interrupted", reply["content"]
    assert took < 2.0, f"interrupt took {took:.2f} s"
    assert results(ok(kc, "kept + 1")) == ["42"]
    # Items survive the new process (variables do not).
    assert results(ok(kc, "%%rust\ntriple(5)")) == ["15"]
    reply, _ = run(kc, "%%rust\nbase")
    assert reply["content"]["status"] == "error"


def test_is_complete_treats_a_rust_cell_as_complete(kernel):
    _, kc = kernel
    msg_id = kc.is_complete("%%rust\nfn f() {")
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "complete"


def test_a_crashed_rust_process_is_restarted_before_the_next_cell(kernel):
    _, kc = kernel
    ok(kc, '%%rust\nsandwich::export("crash", |_| -> Result<f64, sandwich::Error> '
           '{ eprintln!("aborting"); std::process::abort() })?;')
    reply, _ = run(kc, 'sw.rust.fn("crash")()')
    assert reply["content"]["status"] == "error"
    assert "'crash' is gone" in reply["content"]["evalue"], reply["content"]["evalue"]
    # The next Rust cell runs (in a new process) rather than reporting the old one's death.
    assert results(ok(kc, "%%rust\ntriple(7)")) == ["21"]
