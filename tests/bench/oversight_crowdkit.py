"""The crowd-kit peer of kernel/core/benches/oversight.rs: times MajorityVote, DawidSkene and
BradleyTerry on the CSV files the bench wrote, and writes their outputs next to them.

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
t = time.perf_counter()
MajorityVote().fit(labels)
out["majority_vote_s"] = time.perf_counter() - t
t = time.perf_counter()
ds = DawidSkene(n_iter=100).fit(labels)
out["dawid_skene_s"] = time.perf_counter() - t
out["dawid_skene_iterations"] = len(ds.loss_history_)
t = time.perf_counter()
bt = BradleyTerry(n_iter=100).fit(pairs)
out["bradley_terry_s"] = time.perf_counter() - t
ds.probas_.reset_index().to_csv(f"{d}/ck_ds_probas.csv", index=False)
bt.scores_.rename("score").rename_axis("label").reset_index().to_csv(f"{d}/ck_bt_scores.csv", index=False)
print(json.dumps(out))
