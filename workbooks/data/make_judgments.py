"""Generates the small crowd-labelling data set that workbooks/explore.lua analyses.

Multiple-choice questions (classes A-D) with a hidden answer and a difficulty in [0, 1];
12 novices (accuracy 0.40-0.75, worse on hard items) and 3 experts (about 0.92) label them.
Each question gets 5 novice labels and 1 expert label. Seeded: rerunning gives the same files.
Run: python3 workbooks/data/make_judgments.py
"""

import csv
import os
import random

rng = random.Random(20261126)
CLASSES = "ABCD"
HERE = os.path.dirname(os.path.abspath(__file__))

tasks = []
for i in range(240):
    tasks.append({"task": f"q{i:03d}", "true_label": rng.choice(CLASSES),
                  "difficulty": round(rng.random(), 3)})

novices = [(f"n{j:02d}", 0.40 + 0.35 * j / 11) for j in range(12)]
experts = [(f"e{j}", 0.92) for j in range(3)]


def answer(truth, skill, difficulty):
    p = max(0.25, skill - 0.3 * (difficulty - 0.5))
    if rng.random() < p:
        return truth
    return rng.choice([c for c in CLASSES if c != truth])


rows = []
for t in tasks:
    for worker, skill in rng.sample(novices, 5):
        rows.append((t["task"], worker, "novice", answer(t["true_label"], skill, t["difficulty"])))
    worker, skill = rng.choice(experts)
    rows.append((t["task"], worker, "expert", answer(t["true_label"], skill, t["difficulty"])))

with open(os.path.join(HERE, "judgments.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["task", "worker", "group", "label"])
    w.writerows(rows)

with open(os.path.join(HERE, "gold.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["task", "true_label", "difficulty"])
    w.writeheader()
    w.writerows(tasks)
