"""Latency of `%%rust` cells in the Sandwich kernel, through jupyter_client (the kernelspec
`sandwich` installed, as tests/run.sh does). Prints, per fresh kernel: the first Rust cell
(starts evcxr's process and compiles), a later trivial cell, the first cell that uses the
`sandwich` crate (links polars), a trivial cell once a DataFrame variable is kept (every later
cell links polars to carry it), and the cost of one `sw.rust.fn` call from Lua.

    python tests/bench/rust_cells_latency.py [--kernels 2]

No peer: evcxr_jupyter is the same evcxr, and the issue names no target; the figures go in the
README."""

import argparse
import platform
import time

from jupyter_client.manager import start_new_kernel


def timed(kc, code):
    start = time.perf_counter()
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=600)
    took = time.perf_counter() - start
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "ok", reply["content"]
    return took


def one_kernel():
    km, kc = start_new_kernel(kernel_name="sandwich", startup_timeout=60)
    try:
        out = {}
        out["first Rust cell (evcxr starts)"] = timed(kc, "%%rust\n1 + 1")
        out["later trivial Rust cell"] = min(timed(kc, "%%rust\n2 + 2") for _ in range(3))
        timed(kc, 'sw.rust.set("d", sw.frame{x = {1.5, 2.5, 4.0}})')
        out["first cell using sandwich::get (links polars)"] = timed(
            kc, '%%rust\nlet d: sandwich::polars::prelude::DataFrame = sandwich::get("d")?;\nd.height()')
        out["trivial cell with a DataFrame kept"] = min(timed(kc, "%%rust\n3 + 3") for _ in range(3))
        timed(kc, '%%rust\nsandwich::export("height", |a| Ok(a.frame(0)?.height()))?;')
        calls = 2000
        base = timed(kc, "local f = sw.rust.fn('height')\nlocal d = sw.rust.get('d')")
        loop = timed(kc, f"local f = sw.rust.fn('height')\nlocal d = sw.rust.get('d')\n"
                         f"for i = 1, {calls} do f(d) end")
        out["sw.rust.fn call with a 3-row frame (per call)"] = (loop - base) / calls
        out["Lua cell, for scale"] = min(timed(kc, "1 + 1") for _ in range(3))
        return out
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kernels", type=int, default=2)
    args = p.parse_args()
    runs = [one_kernel() for _ in range(args.kernels)]
    print(f"machine: {platform.machine()}, {platform.processor() or platform.platform()}")
    for key in runs[0]:
        values = [r[key] for r in runs]
        shown = " / ".join(f"{v * 1e3:.0f} ms" if v >= 1e-3 else f"{v * 1e6:.0f} µs" for v in values)
        print(f"{key:50s} {shown}")


if __name__ == "__main__":
    main()
