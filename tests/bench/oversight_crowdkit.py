"""The crowd-kit peer of kernel/core/benches/oversight.rs: times MajorityVote, DawidSkene and
BradleyTerry on the CSV files the bench wrote (median of 3 runs; BradleyTerry once), and writes
their outputs next to them.

    python tests/bench/oversight_crowdkit.py DIR    (needs crowd-kit 1.4.2, pandas)
Prints one JSON line of seconds.
"""

import json
import sys
import time

import pandas as pd
from crowdkit.aggregation import BradleyTerry, DawidSkene, MajorityVote

d = sys.argv[1]
labels = pd.read_csv(f"{d}/labels.csv")
pairs = pd.read_csv(f"{d}/pairs.csv")
out = {}


def median_of_3(fit):
    """The last result and the median of three timed runs (the first is also a warm-up)."""
    secs = []
    for _ in range(3):
        t = time.perf_counter()
        res = fit()
        secs.append(time.perf_counter() - t)
    return res, sorted(secs)[1]


_, out["majority_vote_s"] = median_of_3(lambda: MajorityVote().fit(labels))
ds, out["dawid_skene_s"] = median_of_3(lambda: DawidSkene(n_iter=100).fit(labels))
out["dawid_skene_iterations"] = len(ds.loss_history_)
# One run: it takes ~15 s and the ratio is in the hundreds.
t = time.perf_counter()
bt = BradleyTerry(n_iter=100).fit(pairs)
out["bradley_terry_s"] = time.perf_counter() - t
ds.probas_.reset_index().to_csv(f"{d}/ck_ds_probas.csv", index=False)
bt.scores_.rename("score").rename_axis("label").reset_index().to_csv(f"{d}/ck_bt_scores.csv", index=False)
print(json.dumps(out))
