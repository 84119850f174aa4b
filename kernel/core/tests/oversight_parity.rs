#![allow(clippy::needless_range_loop)] // parallel arrays indexed by task, worker and label
//! Aggregation, agreement and metrics against their reference implementations.
//!
//! Reference: `tests/parity/make_oversight_fixtures.py` (crowd-kit 1.4.2, scikit-learn,
//! statsmodels, krippendorff) on seeded crowds: binary with string labels and unequal coverage,
//! multi-class with integer labels and spammers, and one whose constant spammer forces ties.
//! Deterministic methods must agree on every label and to 1e-9; EM methods to 1e-6.

use std::collections::HashMap;
use std::path::PathBuf;

use polars::prelude::DataFrame;
use sandwich_core::oversight::{self, Aggregation, Crowd, IterOptions, KappaWeights, Level};
use sandwich_core::{column_floats, read_csv, CsvReadOptions};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../tests/parity/fixtures/oversight")
}

fn csv(name: &str) -> DataFrame {
    read_csv(
        dir().join(format!("{name}.csv")),
        &CsvReadOptions::default(),
    )
    .unwrap()
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap())
        .unwrap()
}

fn close(what: &str, ours: f64, theirs: f64, tol: f64) {
    assert!(
        (ours - theirs).abs() <= tol,
        "{what}: ours {ours}, reference {theirs}"
    );
}

fn check(case: &str, method: &str, agg: &Aggregation, reference: &Value, tol: f64) {
    let c = &agg.crowd;
    let k = c.n_labels();
    let labels = agg.labels();
    let ref_labels = reference["labels"].as_object().unwrap();
    assert_eq!(ref_labels.len(), c.n_tasks(), "{case}/{method}: task count");
    for t in 0..c.n_tasks() {
        let task = c.tasks.name(t);
        let theirs = &ref_labels[&task];
        let theirs = theirs
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| theirs.to_string());
        let row = &reference["probas"][&task];
        let best = (0..k)
            .map(|l| row[&c.labels.name(l)].as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        let tied: Vec<String> = (0..k)
            .filter(|&l| (row[&c.labels.name(l)].as_f64().unwrap() - best).abs() < 1e-12)
            .map(|l| c.labels.name(l))
            .collect();
        // Ties go to the label seen first in the data, as in crowd-kit.
        assert_eq!(
            c.labels.name(labels[t]),
            theirs,
            "{case}/{method}: label of {task} (tied: {tied:?})"
        );
        for l in 0..k {
            let p = row[&c.labels.name(l)].as_f64().unwrap();
            close(
                &format!("{case}/{method}: P({task} = {})", c.labels.name(l)),
                agg.probas[t * k + l],
                p,
                tol,
            );
        }
    }
    if let (Some(skills), Some(theirs)) = (&agg.skills, reference.get("skills")) {
        for w in 0..c.n_workers() {
            let name = c.workers.name(w);
            close(
                &format!("{case}/{method}: skill of {name}"),
                skills[w],
                theirs[&name].as_f64().unwrap(),
                tol,
            );
        }
    }
    if let Some(n) = reference.get("iterations") {
        assert_eq!(
            agg.iterations as u64,
            n.as_u64().unwrap(),
            "{case}/{method}: EM iterations"
        );
    }
    if let (Some(errors), Some(theirs)) = (&agg.errors, reference.get("errors")) {
        assert_eq!(
            errors.len(),
            theirs.as_object().unwrap().len(),
            "{case}/{method}: error rows"
        );
        for (w, obs, row) in errors {
            let key = format!(
                "{}|{}",
                c.workers.name(*w as usize),
                c.labels.name(*obs as usize)
            );
            for t in 0..k {
                let p = theirs[&key][&c.labels.name(t)].as_f64().unwrap();
                close(
                    &format!("{case}/{method}: error {key} → {}", c.labels.name(t)),
                    row[t],
                    p,
                    tol,
                );
            }
        }
        let priors = agg.priors.as_ref().unwrap();
        for l in 0..k {
            close(
                &format!("{case}/{method}: prior"),
                priors[l],
                reference["priors"][&c.labels.name(l)].as_f64().unwrap(),
                tol,
            );
        }
    }
}

#[test]
fn aggregation_matches_crowd_kit() {
    for case in ["binary", "multiclass", "ties"] {
        let c = Crowd::from_frame("test", &csv(case)).unwrap();
        let r = json(case);
        let o = IterOptions::default();
        check(
            case,
            "majority_vote",
            &oversight::majority_vote(&c),
            &r["majority_vote"],
            1e-9,
        );
        check(case, "wawa", &oversight::wawa(&c), &r["wawa"], 1e-9);
        check(
            case,
            "zero_based_skill",
            &oversight::zero_based_skill(&c, &o).unwrap(),
            &r["zero_based_skill"],
            1e-9,
        );
        check(
            case,
            "dawid_skene",
            &oversight::dawid_skene(&c, &o).unwrap(),
            &r["dawid_skene"],
            1e-6,
        );
        check(
            case,
            "one_coin_dawid_skene",
            &oversight::one_coin_dawid_skene(&c, &o).unwrap(),
            &r["one_coin_dawid_skene"],
            1e-6,
        );
    }
}

#[test]
fn bradley_terry_matches_crowd_kit_and_converges() {
    let pw = oversight::Comparisons::from_frame("test", &csv("pairwise")).unwrap();
    let r = json("pairwise");
    let all: Vec<usize> = (0..pw.left.len()).collect();
    let two = oversight::bt_scores(&pw, &all, false, 2, 0.0);
    let scores: HashMap<String, f64> = (0..two.len()).map(|i| (pw.items.name(i), two[i])).collect();
    // crowd-kit 1.4.2 stops after two iterations whatever n_iter (see the fixture script).
    for (item, v) in r["crowdkit"].as_object().unwrap() {
        close(
            &format!("BT (2 iterations) {item}"),
            scores[item],
            v.as_f64().unwrap(),
            1e-12,
        );
    }
    let converged = oversight::bt_scores(&pw, &all, false, 100_000, 1e-13);
    for i in 0..converged.len() {
        close(
            &format!("BT (converged) {}", pw.items.name(i)),
            converged[i],
            r["converged"][&pw.items.name(i)].as_f64().unwrap(),
            1e-9,
        );
    }
}

#[test]
fn agreement_and_metrics_match_sklearn_statsmodels_krippendorff() {
    let r = json("agreement");
    let k = csv("kappa");
    let strings = |c: &str| {
        column_floats("t", &k, c)
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
    };
    let (a, b) = (strings("a"), strings("b"));
    for (name, w) in [
        ("none", KappaWeights::None),
        ("linear", KappaWeights::Linear),
        ("quadratic", KappaWeights::Quadratic),
    ] {
        close(
            &format!("Cohen's kappa ({name})"),
            oversight::cohen_kappa(&a, &b, w).unwrap(),
            r["kappa"][name].as_f64().unwrap(),
            1e-12,
        );
    }
    let fleiss = Crowd::from_frame("t", &csv("fleiss")).unwrap();
    close(
        "Fleiss' kappa",
        oversight::fleiss_kappa(&fleiss).unwrap(),
        r["fleiss"].as_f64().unwrap(),
        1e-12,
    );
    let kr = csv("krippendorff");
    for (name, level) in [
        ("nominal", Level::Nominal),
        ("ordinal", Level::Ordinal),
        ("interval", Level::Interval),
    ] {
        close(
            &format!("Krippendorff's alpha ({name})"),
            oversight::krippendorff_alpha(&kr, level).unwrap(),
            r["alpha"][name].as_f64().unwrap(),
            1e-12,
        );
    }
    // A ratings table (`task, worker, score`) with half-point scores.
    let ratings = csv("ratings");
    for (name, level) in [
        ("nominal", Level::Nominal),
        ("ordinal", Level::Ordinal),
        ("interval", Level::Interval),
    ] {
        close(
            &format!("Krippendorff's alpha on ratings ({name})"),
            oversight::krippendorff_alpha(&ratings, level).unwrap(),
            r["ratings_alpha"][name].as_f64().unwrap(),
            1e-12,
        );
    }
    let m = csv("classification");
    let (truth, prob) = (
        column_floats("t", &m, "truth").unwrap(),
        column_floats("t", &m, "prob").unwrap(),
    );
    close(
        "AUROC",
        oversight::auroc(&truth, &prob).unwrap(),
        r["metrics"]["auroc"].as_f64().unwrap(),
        1e-12,
    );
    close(
        "Brier",
        oversight::brier(&truth, &prob).unwrap(),
        r["metrics"]["brier"].as_f64().unwrap(),
        1e-12,
    );
    let s = |c: &str| {
        column_floats("t", &m, c)
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
    };
    let (acc, f1) = oversight::accuracy_f1(&s("truth"), &s("pred")).unwrap();
    close(
        "accuracy",
        acc,
        r["metrics"]["accuracy"].as_f64().unwrap(),
        1e-12,
    );
    close(
        "macro F1",
        f1,
        r["metrics"]["f1_macro"].as_f64().unwrap(),
        1e-12,
    );
}

/// GLAD: crowd-kit's M-step is scipy's conjugate gradient capped at 25 steps with tolerance
/// 1e-2, ours a gradient ascent to 1e-6; both climb the same posterior, so labels agree and
/// probabilities agree loosely (the bounds below are what the fixtures show, with margin).
#[test]
fn glad_agrees_with_crowd_kit() {
    for case in ["binary", "multiclass", "ties"] {
        let c = Crowd::from_frame("test", &csv(case)).unwrap();
        let r = &json(case)["glad"];
        let g = oversight::glad(&c, &IterOptions::default()).unwrap();
        let k = c.n_labels();
        let labels = g.labels();
        let mut same = 0;
        let mut max_diff = 0f64;
        for t in 0..c.n_tasks() {
            let task = c.tasks.name(t);
            let theirs = &r["labels"][&task];
            let theirs = theirs
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| theirs.to_string());
            same += usize::from(c.labels.name(labels[t]) == theirs);
            for l in 0..k {
                let p = r["probas"][&task][&c.labels.name(l)].as_f64().unwrap();
                max_diff = max_diff.max((g.probas[t * k + l] - p).abs());
            }
        }
        let agreement = same as f64 / c.n_tasks() as f64;
        println!(
            "GLAD {case}: labels agree on {agreement:.3}, max |Δp| {max_diff:.3e}, {} iterations",
            g.iterations
        );
        assert!(
            agreement >= 0.95,
            "GLAD {case}: labels agree on only {agreement}"
        );
    }
}

/// Noisy Bradley-Terry from crowd-kit's own starting point (recorded by the fixture script).
/// Two documented differences: crowd-kit adds its regulariser with the sign that makes the
/// objective unbounded below, and stops scipy's L-BFGS-B early (ftol 1e-5 in float32, 100
/// iterations); ours penalises and converges. What must agree is the order of the items: the
/// same two best, and no item more than one place away.
#[test]
fn noisy_bradley_terry_matches_crowd_kit_from_the_same_start() {
    let df = csv("pairwise");
    let pw = oversight::Comparisons::from_frame("test", &df).unwrap();
    let (workers, codes) = oversight::worker_codes("test", &df).unwrap();
    let r = &json("pairwise")["noisy"];
    let x0: Vec<f64> = r["x0"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let fit = oversight::noisy_bt(&pw, &codes, workers.len(), &x0, 1e-5, 10_000).unwrap();
    let (scores, biases, skills, iterations) = (fit.scores, fit.biases, fit.skills, fit.iterations);
    let mut max_diff = 0f64;
    for (i, s) in scores.iter().enumerate() {
        max_diff = max_diff.max((s - r["scores"][&pw.items.name(i)].as_f64().unwrap()).abs());
    }
    let mut worker_diff = 0f64;
    for w in 0..workers.len() {
        worker_diff =
            worker_diff.max((skills[w] - r["skills"][&workers.name(w)].as_f64().unwrap()).abs());
        worker_diff =
            worker_diff.max((biases[w] - r["biases"][&workers.name(w)].as_f64().unwrap()).abs());
    }
    println!("noisy BT: max |Δ score| {max_diff:.2e}, max |Δ skill or bias| {worker_diff:.2e}, {iterations} iterations");
    // Same ranking of items.
    let mut ours: Vec<usize> = (0..scores.len()).collect();
    ours.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut theirs = ours.clone();
    theirs.sort_by(|&a, &b| {
        r["scores"][&pw.items.name(b)]
            .as_f64()
            .unwrap()
            .total_cmp(&r["scores"][&pw.items.name(a)].as_f64().unwrap())
    });
    assert_eq!(ours[..2], theirs[..2], "the two best items");
    for item in 0..scores.len() {
        let a = ours.iter().position(|&x| x == item).unwrap() as i64;
        let b = theirs.iter().position(|&x| x == item).unwrap() as i64;
        assert!(
            (a - b).abs() <= 1,
            "item {item}: rank {a} vs crowd-kit's {b}"
        );
    }
}

/// The start recorded by the fixture script, in our (sorted) worker and label order.
fn mace_start(c: &Crowd, r: &Value) -> oversight::MaceParams {
    let k = c.n_labels();
    let mut spamming = Vec::new();
    let mut strategies = Vec::new();
    for w in 0..c.n_workers() {
        let name = c.workers.name(w);
        let pair = r["spamming"][&name].as_array().unwrap();
        spamming.push([pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap()]);
        for l in 0..k {
            strategies.push(r["strategies"][&name][&c.labels.name(l)].as_f64().unwrap());
        }
    }
    oversight::MaceParams {
        spamming,
        strategies,
    }
}

/// MACE (VB and EM) from crowd-kit's own start, against crowd-kit with its strategy counts
/// aligned to its parameters (the fixture script explains the patch): labels, posteriors, the
/// (spam, know) weights and the strategies to 1e-6.
#[test]
fn mace_matches_crowd_kit_from_the_same_start() {
    for case in ["binary", "multiclass", "ties"] {
        let c = Crowd::from_frame("test", &csv(case)).unwrap();
        for (key, method) in [
            ("mace", oversight::MaceMethod::Vb),
            ("mace_em", oversight::MaceMethod::Em),
        ] {
            let r = &json(case)[key];
            let o = oversight::MaceOptions {
                method,
                ..Default::default()
            };
            let m = oversight::mace_from(&c, &o, mace_start(&c, &r["init"])).unwrap();
            assert_eq!(m.aggregation.iterations, 50);
            check(case, key, &m.aggregation, r, 1e-6);
            for w in 0..c.n_workers() {
                let name = c.workers.name(w);
                for i in 0..2 {
                    close(
                        &format!("{case}/{key}: spamming of {name}"),
                        m.params.spamming[w][i],
                        r["spamming"][&name][i].as_f64().unwrap(),
                        1e-6,
                    );
                }
                for l in 0..c.n_labels() {
                    close(
                        &format!("{case}/{key}: strategy of {name}"),
                        m.params.strategies[w * c.n_labels() + l],
                        r["strategies"][&name][&c.labels.name(l)].as_f64().unwrap(),
                        1e-6,
                    );
                }
            }
        }
    }
}

/// Random restarts: deterministic for a seed, and the kept restart is the most likely one.
#[test]
fn mace_restarts_keep_the_most_likely_fit() {
    let c = Crowd::from_frame("test", &csv("multiclass")).unwrap();
    let o = oversight::MaceOptions::default();
    let a = oversight::mace(&c, &o).unwrap();
    let b = oversight::mace(&c, &o).unwrap();
    assert_eq!(a.aggregation.probas, b.aggregation.probas);
    let one = oversight::MaceOptions {
        n_restarts: 1,
        ..Default::default()
    };
    let single = oversight::mace(&c, &one).unwrap();
    assert!(a.log_likelihood >= single.log_likelihood);
    assert!(a.log_likelihood.is_finite());
}

/// MACE's purpose: on a crowd of five reliable workers and five uniform spammers it tells them
/// apart and beats majority vote against the truth.
#[test]
fn mace_separates_spammers_and_beats_majority_vote() {
    use polars::prelude::{Column, DataFrame};
    use sandwich_core::Rng;
    let mut rng = Rng::new(7);
    let (n_tasks, k) = (1500, 3);
    let truth: Vec<usize> = (0..n_tasks).map(|_| rng.below(k)).collect();
    let (mut task, mut worker, mut label) = (Vec::new(), Vec::new(), Vec::new());
    for (t, &y) in truth.iter().enumerate() {
        let mut who: Vec<usize> = (0..10).collect();
        rng.shuffle(&mut who);
        for &w in &who[..5] {
            let l = if w < 5 && rng.uniform() < 0.8 {
                y
            } else {
                rng.below(k)
            };
            task.push(t as i64);
            worker.push(format!("w{w}"));
            label.push(l as i64);
        }
    }
    let df = DataFrame::new_infer_height(vec![
        Column::new("task".into(), task),
        Column::new("worker".into(), worker),
        Column::new("label".into(), label),
    ])
    .unwrap();
    let c = Crowd::from_frame("test", &df).unwrap();
    let m = oversight::mace(&c, &oversight::MaceOptions::default()).unwrap();
    let skills = m.aggregation.skills.as_ref().unwrap();
    for w in 0..10 {
        let name = c.workers.name(w);
        let good = name.as_str() < "w5";
        assert!(
            if good {
                skills[w] > 0.6
            } else {
                skills[w] < 0.2
            },
            "competence of {name}: {}",
            skills[w]
        );
    }
    let accuracy = |labels: Vec<usize>| {
        labels
            .iter()
            .enumerate()
            .filter(|&(t, &l)| {
                c.labels.name(l) == truth[c.tasks.name(t).parse::<usize>().unwrap()].to_string()
            })
            .count() as f64
            / n_tasks as f64
    };
    let ours = accuracy(m.aggregation.labels());
    let mv = accuracy(oversight::majority_vote(&c).labels());
    println!("MACE {ours:.3} vs majority vote {mv:.3}");
    assert!(ours > mv + 0.02, "MACE {ours} vs majority vote {mv}");
}

/// Gao et al.'s over-optimisation forms against scipy's `curve_fit` (fixtures from
/// `tests/parity/make_overopt_fixtures.py`): coefficients, standard errors, 95% t intervals.
#[test]
fn gao_fits_match_scipy_curve_fit() {
    use sandwich_core::overopt::{fit_gao, GaoForm};
    let path = dir().join("../overopt.json");
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let floats = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    for c in cases.as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let form = GaoForm::parse(c["form"].as_str().unwrap()).unwrap();
        let f = fit_gao(&floats(&c["d"]), &floats(&c["reward"]), form, 0.95).unwrap();
        let num = |k: &str| c[k].as_f64().unwrap();
        close(&format!("{name} alpha"), f.alpha, num("alpha"), 1e-6);
        close(&format!("{name} beta"), f.beta, num("beta"), 1e-6);
        close(
            &format!("{name} alpha_se"),
            f.alpha_se,
            num("alpha_se"),
            1e-6,
        );
        close(&format!("{name} beta_se"), f.beta_se, num("beta_se"), 1e-6);
        close(&format!("{name} rss"), f.rss, num("rss"), 1e-9);
        let (a, b) = (floats(&c["alpha_ci"]), floats(&c["beta_ci"]));
        close(&format!("{name} alpha_ci low"), f.alpha_ci.0, a[0], 1e-6);
        close(&format!("{name} alpha_ci high"), f.alpha_ci.1, a[1], 1e-6);
        close(&format!("{name} beta_ci low"), f.beta_ci.0, b[0], 1e-6);
        close(&format!("{name} beta_ci high"), f.beta_ci.1, b[1], 1e-6);
    }
}
