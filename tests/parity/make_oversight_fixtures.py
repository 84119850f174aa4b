"""Reference values for kernel/core/tests/oversight_parity.rs.

Generates small seeded crowds of several shapes (binary with string labels and unequal coverage,
multi-class with integer labels, spammers and missing labels, a constant spammer that forces vote
ties) and pairwise comparisons, runs Toloka crowd-kit, scikit-learn, statsmodels and the
`krippendorff` package on them, and writes the inputs (CSV) and the results (JSON) to
tests/parity/fixtures/oversight/.

    pip install crowd-kit==1.4.2 scikit-learn statsmodels krippendorff numpy pandas
    python tests/parity/make_oversight_fixtures.py
"""

import json
import pathlib

import krippendorff
import numpy as np
import pandas as pd
from crowdkit.aggregation import (
    BradleyTerry,
    DawidSkene,
    NoisyBradleyTerry,
    GLAD,
    MACE,
    MajorityVote,
    OneCoinDawidSkene,
    Wawa,
    ZeroBasedSkill,
)
from sklearn.metrics import cohen_kappa_score, roc_auc_score, brier_score_loss, f1_score
from statsmodels.stats.inter_rater import fleiss_kappa

OUT = pathlib.Path(__file__).parent / "fixtures" / "oversight"
OUT.mkdir(parents=True, exist_ok=True)


def crowd(seed, n_tasks, labels, accuracies, k_range, spammers=0, constant=None):
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(labels), n_tasks)
    workers = [f"w{i:02d}" for i in range(len(accuracies) + spammers + (constant is not None))]
    rows = []
    for t in range(n_tasks):
        k = rng.integers(k_range[0], k_range[1] + 1)
        for w in rng.choice(len(workers), size=min(k, len(workers)), replace=False):
            if w < len(accuracies):
                if rng.random() < accuracies[w]:
                    lab = truth[t]
                else:
                    lab = rng.choice([x for x in range(len(labels)) if x != truth[t]])
            elif w < len(accuracies) + spammers:
                lab = rng.integers(len(labels))
            else:
                lab = constant
            rows.append((f"t{t:03d}", workers[w], labels[lab]))
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    gold = pd.DataFrame({"task": [f"t{t:03d}" for t in range(n_tasks)], "true_label": [labels[x] for x in truth]})
    return df, gold


class AlignedMACE(MACE):
    """crowd-kit 1.4.2's MACE with its strategy counts aligned to its parameter arrays.

    `_e_step` builds the strategy counts with `groupby(["worker", "label"]).unstack()` (rows
    sorted by worker, columns by label) while `thetas_` is indexed in `pd.factorize`
    (first-seen) order, so the M-step gives workers each other's counts whenever the orders
    differ. Reindexing the counts is the whole fix; nothing else changes."""

    def _e_step(self, annotation, task_names, worker_names, label_names, tasks, workers, labels):
        ll, gold, strategy, knowing = super()._e_step(
            annotation, task_names, worker_names, label_names, tasks, workers, labels)
        strategy = strategy.reindex(index=worker_names, columns=label_names, fill_value=0.0)
        return ll, gold, strategy, knowing


def mace(df, method):
    """MACE's result and the start it began from, keyed by worker and label names."""
    worker_names = pd.factorize(df["worker"])[1]
    label_names = pd.factorize(df["label"])[1]
    start = AlignedMACE(method=method)
    start._initialize(len(worker_names), len(label_names))
    m = AlignedMACE(method=method).fit(df)
    plain = MACE(method=method).fit(df)
    moved = int((plain.labels_ != m.labels_).sum())
    print(f"MACE {method}: unpatched crowd-kit gives {moved} different labels of {len(m.labels_)}")
    names = lambda a: {str(w): {str(l): float(a[i, j]) for j, l in enumerate(label_names)}
                       for i, w in enumerate(worker_names)}
    pair = lambda a: {str(w): [float(a[i, 0]), float(a[i, 1])] for i, w in enumerate(worker_names)}
    return {"labels": frame_dict(m.labels_),
            "probas": {str(t): frame_dict(r) for t, r in m.probas_.iterrows()},
            "spamming": pair(m.spamming_), "strategies": names(m.thetas_),
            "init": {"spamming": pair(start.spamming_), "strategies": names(start.thetas_)},
            "unpatched_label_differences": moved}


def frame_dict(s):
    return {str(k): (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in s.items()}


def aggregate(name, df):
    res = {}
    mv = MajorityVote().fit(df)
    res["majority_vote"] = {"labels": frame_dict(mv.labels_), "skills": frame_dict(mv.skills_),
                            "probas": {str(t): frame_dict(r) for t, r in mv.probas_.iterrows()}}
    # Wawa/ZeroBasedSkill.predict call sklearn's check_is_fitted, which recent scikit-learn
    # rejects for crowd-kit's classes; their `_apply` is exactly MajorityVote with the skills.
    wa = Wawa().fit(df)
    wa_mv = MajorityVote().fit(df, skills=wa.skills_)
    res["wawa"] = {"labels": frame_dict(wa_mv.labels_), "skills": frame_dict(wa.skills_),
                   "probas": {str(t): frame_dict(r) for t, r in wa_mv.probas_.iterrows()}}
    zbs = ZeroBasedSkill().fit(df)
    zbs_mv = MajorityVote().fit(df, skills=zbs.skills_)
    res["zero_based_skill"] = {"labels": frame_dict(zbs_mv.labels_), "skills": frame_dict(zbs.skills_),
                               "probas": {str(t): frame_dict(r) for t, r in zbs_mv.probas_.iterrows()}}
    ds = DawidSkene(n_iter=100).fit(df)
    res["dawid_skene"] = {"labels": frame_dict(ds.labels_), "iterations": len(ds.loss_history_),
                          "probas": {str(t): frame_dict(r) for t, r in ds.probas_.iterrows()},
                          "errors": {f"{w}|{l}": frame_dict(r) for (w, l), r in ds.errors_.iterrows()},
                          "priors": frame_dict(ds.priors_)}
    oc = OneCoinDawidSkene(n_iter=100).fit(df)
    res["one_coin_dawid_skene"] = {"labels": frame_dict(oc.labels_), "skills": frame_dict(oc.skills_),
                                   "iterations": len(oc.loss_history_),
                                   "probas": {str(t): frame_dict(r) for t, r in oc.probas_.iterrows()}}
    gl = GLAD(n_iter=100).fit(df)
    res["glad"] = {"labels": frame_dict(gl.labels_), "skills": frame_dict(gl.alphas_),
                   "probas": {str(t): frame_dict(r) for t, r in gl.probas_.iterrows()}}
    res["mace"] = mace(df, "vb")
    res["mace_em"] = mace(df, "em")
    df.to_csv(OUT / f"{name}.csv", index=False)
    (OUT / f"{name}.json").write_text(json.dumps(res, indent=0, default=lambda x: x.item()))
    return res


def main():
    acc = [0.95, 0.9, 0.8, 0.7, 0.65, 0.6, 0.55]
    binary, gold = crowd(1, 60, ["neg", "pos"], acc, (3, 5))
    aggregate("binary", binary)
    gold.to_csv(OUT / "binary_gold.csv", index=False)
    multi, _ = crowd(2, 80, [0, 1, 2, 3], [0.9, 0.85, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35], (2, 6), spammers=2)
    aggregate("multiclass", multi)
    ties, _ = crowd(3, 40, ["a", "b", "c"], [0.8, 0.6, 0.5], (2, 2), constant=2)
    aggregate("ties", ties)

    # Pairwise: 8 items with Bradley-Terry strengths, no ties (crowd-kit's BT has none).
    rng = np.random.default_rng(4)
    strength = np.exp(rng.normal(0, 1, 8))
    items = [f"m{i}" for i in range(8)]
    rows = []
    for _ in range(400):
        i, j = rng.choice(8, 2, replace=False)
        win = items[i] if rng.random() < strength[i] / (strength[i] + strength[j]) else items[j]
        rows.append((f"w{rng.integers(5)}", items[i], items[j], win))
    pw = pd.DataFrame(rows, columns=["worker", "left", "right", "label"])
    pw.to_csv(OUT / "pairwise.csv", index=False)
    bt = BradleyTerry(n_iter=100).fit(pw)
    # crowd-kit 1.4.2 compares p_new with itself after the first iteration (p_old aliases
    # p_new), so it always stops after 2 iterations; the converged MLE is computed here with
    # the same update and a working stopping rule.
    M, labels = BradleyTerry._build_win_matrix(pw)
    T = M + M.T
    w = M.sum(axis=1)
    p = np.ones(len(labels))
    for _ in range(100000):
        Z = np.where(T > 0, T / (p[:, None] + p[None, :]), 0.0)
        new = w / Z.sum(axis=0)
        new /= new.sum()
        done = np.abs(new - p).sum() < 1e-13
        p = new
        if done:
            break
    # NoisyBradleyTerry starts from np.random.rand after np.random.seed(random_state); record
    # that starting point so the Rust side can start from the same one.
    nbt = NoisyBradleyTerry(n_iter=100).fit(pw)
    n_items, n_workers = len(np.unique(pw[["left", "right", "label"]].values)), pw.worker.nunique()
    np.random.seed(0)
    x0 = np.random.rand(1 + n_items + 2 * n_workers)
    json.dump({"crowdkit": frame_dict(bt.scores_), "converged": dict(zip(map(str, labels), p.tolist())),
               "noisy": {"x0": x0.tolist(), "scores": frame_dict(nbt.scores_), "skills": frame_dict(nbt.skills_),
                         "biases": frame_dict(nbt.biases_)}},
              open(OUT / "pairwise.json", "w"), indent=0)

    # Agreement.
    rng = np.random.default_rng(5)
    a = rng.integers(1, 6, 200)
    b = np.clip(a + rng.integers(-1, 2, 200), 1, 5)
    noise = rng.random(200) < 0.2
    b[noise] = rng.integers(1, 6, noise.sum())
    pd.DataFrame({"a": a.astype(str), "b": b.astype(str)}).to_csv(OUT / "kappa.csv", index=False)
    kappa = {wt or "none": cohen_kappa_score(a.astype(str), b.astype(str), weights=wt) for wt in [None, "linear", "quadratic"]}
    # Fleiss: 4 labels per task, 3 categories.
    rows = []
    for t in range(50):
        true = rng.integers(3)
        for w in range(4):
            rows.append((t, f"r{w}", int(true if rng.random() < 0.6 else rng.integers(3))))
    fl = pd.DataFrame(rows, columns=["task", "worker", "label"])
    fl.to_csv(OUT / "fleiss.csv", index=False)
    table = fl.groupby(["task", "label"]).size().unstack(fill_value=0).to_numpy()
    fleiss = fleiss_kappa(table, method="fleiss")
    # Krippendorff: 6 raters × 40 units, values 1..5, a third missing.
    data = np.clip(rng.integers(1, 6, 40)[None, :] + rng.integers(-1, 2, (6, 40)), 1, 5).astype(float)
    data[rng.random((6, 40)) < 0.33] = np.nan
    kr_rows = [(u, f"r{r}", int(data[r, u])) for r in range(6) for u in range(40) if not np.isnan(data[r, u])]
    pd.DataFrame(kr_rows, columns=["task", "worker", "label"]).to_csv(OUT / "krippendorff.csv", index=False)
    alpha = {lvl: krippendorff.alpha(reliability_data=data, level_of_measurement=lvl) for lvl in ["nominal", "ordinal", "interval"]}
    # Classification metrics.
    y = rng.integers(0, 2, 300)
    prob = np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1)
    prob[:10] = 0.5  # ties in the score
    pred = (prob > 0.5).astype(int)
    pd.DataFrame({"truth": y, "prob": prob, "pred": pred}).to_csv(OUT / "classification.csv", index=False)
    metrics = {"auroc": roc_auc_score(y, prob), "brier": brier_score_loss(y, prob),
               "accuracy": float((y == pred).mean()), "f1_macro": f1_score(y, pred, average="macro")}
    # Ratings (`task, worker, score`) on a half-point scale: fractional values, a quarter missing.
    rr = np.random.default_rng(11)
    scores = np.clip(rr.integers(2, 9, 30)[None, :] + rr.integers(-2, 3, (5, 30)), 2, 10) / 2.0
    scores[rr.random((5, 30)) < 0.25] = np.nan
    pd.DataFrame([(u, f"r{r}", scores[r, u]) for r in range(5) for u in range(30) if not np.isnan(scores[r, u])],
                 columns=["task", "worker", "score"]).to_csv(OUT / "ratings.csv", index=False)
    ratings_alpha = {lvl: krippendorff.alpha(reliability_data=scores, level_of_measurement=lvl)
                     for lvl in ["nominal", "ordinal", "interval"]}
    json.dump({"kappa": kappa, "fleiss": fleiss, "alpha": alpha, "ratings_alpha": ratings_alpha, "metrics": metrics},
              open(OUT / "agreement.json", "w"), indent=0)
    print("written to", OUT)


if __name__ == "__main__":
    main()
