"""Benchmark (issue 7): handing a DataFrame from the Sandwich session to polars in Python.

Zero-copy through the Arrow PyCapsule interface (`polars.DataFrame(sandwich_frame)`) against a
copy through Python lists of the same data, in the same run, for growing row counts. The
zero-copy time should not grow with the rows. Run with the wheel installed:

    python tests/bench/python_handoff.py [--rows 100000,1000000,10000000]
"""

import argparse
import statistics
import time

import polars as pl

import sandwich


def timed(f, repeat=5):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="100000,1000000,10000000")
    args = ap.parse_args()
    s = sandwich.Session()
    print(f"{'rows':>12} {'zero-copy ms':>14} {'via lists ms':>14} {'ratio':>8}")
    for n in [int(x) for x in args.rows.split(",")]:
        # Built by polars in Lua: an integer and a float column of n rows.
        s.set("seed_frame", pl.DataFrame({"i": pl.arange(0, n, eager=True), "f": pl.arange(0, n, eager=True) * 0.5}))
        s.eval("frame = seed_frame:with_columns(sw.col('f'):alias('g'))")
        handle = s.get("frame")
        zero, out = timed(lambda: pl.DataFrame(handle))
        assert out.height == n
        copy, out2 = timed(lambda: pl.DataFrame({c: pl.DataFrame(handle)[c].to_list() for c in handle.columns}), repeat=1)
        assert out2.equals(out)
        print(f"{n:>12} {zero * 1e3:>14.3f} {copy * 1e3:>14.1f} {zero / copy:>8.5f}")


if __name__ == "__main__":
    main()
