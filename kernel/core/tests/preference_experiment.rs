//! The preference sandwich on the experiment engine (`experiment::PreferenceExperiment`): a
//! small run end to end, its results' shape, the verdicts' accuracy where it is known, PGR's
//! table, determinism, and errors before any compute.

use sandwich_core::experiment::{PreferenceExperiment, PreferenceSpec};
use serde_json::{json, Value};

fn spec(extra: Value) -> PreferenceSpec {
    let mut s = json!({
        "task": {"pairs": 120, "corpus": 160},
        "policy": {"model": {"arch": "llama", "hidden_size": 32, "layers": 2, "heads": 4},
                   "train": {"epochs": 1, "batch_size": 32, "lr": 3e-3}},
        "reward_model": {"model": {"arch": "llama", "hidden_size": 32, "layers": 2, "heads": 4},
                         "train": {"epochs": 1, "batch_size": 32, "lr": 1e-3}},
        "weak_pairs": 20,
        "overseers": {"novices": {"k": 3, "overseers": [
            {"id": "n1", "accuracy": 0.7, "bias": "longer", "bias_strength": 0.3},
            {"id": "n2", "accuracy": 0.7},
            {"id": "n3", "accuracy": 0.7, "bias": "keyword", "keyword": "masterpiece", "bias_strength": 0.3}]}},
        "arms": ["weak", "ceiling", "crowd_bradley_terry", "crowd_noisy_bradley_terry", "assisted_novices"],
        "seeds": [1, 2],
        "best_of_n": {"n": 4, "pool": 8, "repeats": 1, "max_new_tokens": 12, "batch_size": 64},
        "rl": {"method": "grpo", "steps": 2, "num_generations": 2, "batch_size": 32, "lr": 1e-4,
               "beta": 0.02, "max_new_tokens": 12, "tail": 2},
    });
    if let (Some(base), Value::Object(extra)) = (s.as_object_mut(), extra) {
        for (k, v) in extra {
            base.insert(k, v);
        }
    }
    serde_json::from_value(s).expect("a valid spec")
}

fn column(df: &polars::prelude::DataFrame, name: &str) -> Vec<f64> {
    sandwich_core::column_floats("test", df, name).unwrap()
}

fn value(df: &polars::prelude::DataFrame, arm: &str, seed: i64, metric: &str) -> f64 {
    let arms = sandwich_core::column_strings("test", df, "arm").unwrap();
    let metrics = sandwich_core::column_strings("test", df, "metric").unwrap();
    let seeds = column(df, "seed");
    let values = column(df, "value");
    let hits: Vec<f64> = (0..df.height())
        .filter(|&i| arms[i] == arm && metrics[i] == metric && seeds[i] == seed as f64)
        .map(|i| values[i])
        .collect();
    assert_eq!(hits.len(), 1, "one row for {arm} / {seed} / {metric}");
    hits[0]
}

#[test]
fn a_small_preference_sandwich_runs_end_to_end_and_repeats_exactly() {
    let mut exp = PreferenceExperiment::new("small", spec(json!({}))).unwrap();
    exp.run().unwrap();
    let res = exp.results.clone().unwrap();
    assert_eq!(res.height(), 5 * 2 * 3, "5 arms × 2 seeds × 3 metrics");
    for seed in [1, 2] {
        assert_eq!(value(&res, "ceiling", seed, "label_accuracy"), 1.0);
        let weak = value(&res, "weak", seed, "label_accuracy");
        assert!(weak > 0.0 && weak < 1.0, "weak verdicts {weak}");
        for arm in [
            "crowd_bradley_terry",
            "crowd_noisy_bradley_terry",
            "assisted_novices",
        ] {
            let acc = value(&res, arm, seed, "label_accuracy");
            assert!(
                acc > 0.5,
                "{arm}: three 70%-accurate novices beat chance ({acc})"
            );
            for m in ["bon_gold", "rl_gold"] {
                assert!(value(&res, arm, seed, m).is_finite());
            }
        }
    }
    // Two aggregation methods over the same judgments (each review in several pairs): their
    // verdicts are not the same everywhere.
    assert!(
        [1, 2]
            .iter()
            .any(|&s| value(&res, "crowd_bradley_terry", s, "label_accuracy")
                != value(&res, "crowd_noisy_bradley_terry", s, "label_accuracy")),
        "Bradley-Terry and noisy Bradley-Terry gave the same verdicts on every seed"
    );
    let pgr = exp.pgr("bon_gold").unwrap();
    let arms = sandwich_core::column_strings("test", &pgr, "arm").unwrap();
    assert_eq!(
        arms,
        [
            "crowd_bradley_terry",
            "crowd_noisy_bradley_terry",
            "assisted_novices"
        ]
    );
    assert_eq!(column(&pgr, "seeds"), vec![2.0; 3]);
    let curves = exp.curves.clone().unwrap();
    assert_eq!(curves.height(), 5 * 2 * 2, "two RL steps per arm and seed");
    // Seeded: the same spec gives the same numbers.
    let mut again = PreferenceExperiment::new("small", spec(json!({}))).unwrap();
    again.run().unwrap();
    assert_eq!(
        column(&res, "value"),
        column(again.results.as_ref().unwrap(), "value")
    );
}

#[test]
fn bad_specs_are_errors_before_compute() {
    let cases = [
        (
            json!({"arms": ["weak", "ceiling", "crowd_majority"]}),
            "arm names among",
        ),
        (
            json!({"arms": ["weak", "crowd_bradley_terry"]}),
            "'ceiling'",
        ),
        (
            json!({"overseers": null, "arms": ["weak", "ceiling", "assisted_novices"]}),
            "novices",
        ),
        (json!({"weak_pairs": 500}), "weak_pairs"),
        (json!({"best_of_n": {"n": 16, "pool": 8}}), "best_of_n.pool"),
        (json!({"best_of_n": {"pool": 1_usize << 21}}), "at most"),
        (json!({"rl": {"method": "ppo"}}), "rl.method"),
        (json!({"rl": {"seed": 3}}), "the experiment sets them"),
        (json!({"rl": {"stepz": 3}}), "stepz"),
        (json!({"level": 1.5}), "level"),
        (json!({"task": {"reviews": 1}}), "task.reviews"),
    ];
    for (extra, want) in cases {
        let e = PreferenceExperiment::new("bad", spec(extra.clone()))
            .err()
            .unwrap_or_else(|| panic!("{extra} should be an error"))
            .to_string();
        assert!(e.contains(want), "{extra}: {e}");
    }
    let unknown = json!({"task": {}, "policy": {"model": {}}, "reward_model": {"model": {}},
                         "arms": ["weak", "ceiling"], "extra": 1});
    let e = serde_json::from_value::<PreferenceSpec>(unknown)
        .unwrap_err()
        .to_string();
    assert!(e.contains("extra"), "{e}");
}

/// Real raters as an arm: the experiment writes a pairwise campaign of its pairs, scripted
/// raters answer through the campaign store (by the gold reward, as an expert would), and the
/// arm `raters` trains on their Bradley-Terry verdicts. A campaign of other pairs is refused.
#[test]
fn a_campaign_of_the_experiments_pairs_makes_its_raters_an_arm() {
    use sandwich_core::feedback::{Campaign, Next, Submitted};
    use sandwich_core::overopt::task::gold_reward;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("raters.db");
    let small = json!({"arms": ["weak", "ceiling"], "overseers": null, "rl": null});
    let exp = PreferenceExperiment::new("raters", spec(small.clone())).unwrap();
    assert_eq!(
        exp.write_campaign(db.to_str().unwrap(), 6, 2).unwrap(),
        2 * 120
    );
    let campaign = Campaign::open(&db).unwrap();
    let mut answered = 0;
    for r in 1..=6 {
        let token = campaign.rater_token(&format!("rater{r:02}")).unwrap();
        for k in 0..10_000 {
            let next = campaign.next(&token).unwrap();
            let Some(Next::Item(a)) = next else {
                break;
            };
            assert!(
                k < 1000,
                "rater{r:02} is still being served items after {k}: {}",
                a.item
            );
            let field = |name: &str| a.fields.iter().find(|f| f.0 == name).unwrap().1.clone();
            let (l, r_) = (field("left"), field("right"));
            // The answer names the side, as the page's keys 1 and 2 do.
            let winner = if gold_reward(&l) >= gold_reward(&r_) {
                "left"
            } else {
                "right"
            };
            let done = campaign
                .submit(&token, &a.item, &json!(winner), &format!("{r}-{k}"))
                .unwrap();
            assert!(
                matches!(done, Some(Submitted::Saved { .. })),
                "rater{r:02}'s answer to {} was not taken: {done:?}",
                a.item
            );
            answered += 1;
        }
    }
    // Every ordinary item (nine in ten) twice, plus the gold items at the raters' gold turns.
    assert!(answered >= 2 * 108 * 2, "{answered} judgments");
    let with = json!({"arms": ["weak", "ceiling", "raters"], "overseers": null, "rl": null,
                      "raters": db.to_str().unwrap()});
    let mut exp = PreferenceExperiment::new("raters", spec(with)).unwrap();
    exp.run().unwrap();
    let res = exp.results.clone().unwrap();
    for seed in [1, 2] {
        let acc = value(&res, "raters", seed, "label_accuracy");
        assert!(acc > 0.95, "raters who judge by the gold reward: {acc}");
    }
    assert_eq!(
        sandwich_core::column_strings("t", &exp.pgr("bon_gold").unwrap(), "arm").unwrap(),
        ["raters"]
    );
    // The same campaign against a spec of other pairs: an error that says so.
    let other = json!({"arms": ["weak", "ceiling", "raters"], "overseers": null, "rl": null,
                       "raters": db.to_str().unwrap(), "task": {"pairs": 100, "corpus": 160}});
    let e = PreferenceExperiment::new("other", spec(other))
        .unwrap()
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("not among them"), "{e}");
    // The arm needs the campaign and the campaign needs the arm.
    let e = PreferenceExperiment::new("x", spec(json!({"arms": ["weak", "ceiling", "raters"]})))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("campaign file"), "{e}");
}
