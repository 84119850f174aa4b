"""Benchmark: round trip of a trivial execute (execute_request sent → `idle` received on iopub),
p50 and p99 over N runs, for the `sandwich` kernel and ipykernel, with the same jupyter_client
client in the same run. Target: our p50 ≤ 0.5 × ipykernel's.

    python tests/bench/kernel_roundtrip.py [N]     (default 1000; needs jupyter_client, ipykernel
                                                    and the installed `sandwich` kernelspec)
"""

import statistics
import sys
import time

from jupyter_client.manager import start_new_kernel


def round_trips(kernel_name, code, n):
    km, kc = start_new_kernel(kernel_name=kernel_name)
    try:
        times = []
        for i in range(n + 20):
            start = time.perf_counter()
            msg_id = kc.execute(code)
            while True:
                msg = kc.get_iopub_msg(timeout=10)
                if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                        and msg["content"]["execution_state"] == "idle"):
                    break
            took = time.perf_counter() - start
            kc.get_shell_msg(timeout=10)  # the reply, so the next request starts clean
            if i >= 20:  # warm-up
                times.append(took * 1000)
        return times
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    ours = round_trips("sandwich", "x = 1", n)
    theirs = round_trips("python3", "x = 1", n)
    print(f"trivial execute round trip over {n} runs (ms):")
    print(f"  sandwich:  p50 {statistics.median(ours):.2f}  p99 {pct(ours, 0.99):.2f}")
    print(f"  ipykernel: p50 {statistics.median(theirs):.2f}  p99 {pct(theirs, 0.99):.2f}")
    print(f"  ratio (ours / ipykernel, target p50 ≤ 0.5): p50 {statistics.median(ours) / statistics.median(theirs):.2f}"
          f"  p99 {pct(ours, 0.99) / pct(theirs, 0.99):.2f}")


if __name__ == "__main__":
    main()
