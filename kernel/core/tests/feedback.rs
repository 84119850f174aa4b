//! Feedback campaigns: assignment, gold and the pause rule, the judgment kinds, conditions,
//! tokens, and the tables — through the same `next`/`submit` calls the web app makes.

use polars::prelude::*;
use sandwich_core::feedback::{Campaign, CampaignSpec, Next, Submitted};
use serde_json::json;

fn spec(v: serde_json::Value) -> CampaignSpec {
    serde_json::from_value(v).unwrap()
}

fn items(n: usize, gold_every: usize) -> DataFrame {
    let id: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let text: Vec<String> = (0..n).map(|i| format!("review {i}")).collect();
    let model: Vec<String> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                "pos".into()
            } else {
                "neg".into()
            }
        })
        .collect();
    let gold: Vec<Option<String>> = (0..n)
        .map(|i| {
            (gold_every > 0 && i % gold_every == 0).then(|| {
                if i % 2 == 0 {
                    "pos".into()
                } else {
                    "neg".into()
                }
            })
        })
        .collect();
    df!("id" => id, "text" => text, "model" => model, "gold" => gold).unwrap()
}

fn token(c: &Campaign, r: &str) -> String {
    c.rater_token(r).unwrap()
}

fn next_item(c: &Campaign, tok: &str) -> Option<String> {
    match c.next(tok).unwrap().unwrap() {
        Next::Item(a) => Some(a.item),
        _ => None,
    }
}

#[test]
fn assignment_fills_every_item_to_its_overlap_and_never_repeats_an_item() {
    let dir = tempfile::tempdir().unwrap();
    let raters: Vec<_> = (0..5).map(|i| json!({"id": format!("r{i}")})).collect();
    let c = Campaign::create(
        dir.path().join("c.db"),
        spec(json!({
        "kind": "label", "choices": ["neg", "pos"], "overlap": 3, "raters": raters})),
        &items(10, 0),
    )
    .unwrap();
    let mut seen = std::collections::HashSet::new();
    // Round-robin: each rater takes one item in turn until all are done.
    let mut active: Vec<String> = (0..5).map(|i| token(&c, &format!("r{i}"))).collect();
    let mut n = 0;
    while !active.is_empty() {
        active.retain(|tok| match next_item(&c, tok) {
            Some(item) => {
                assert!(
                    seen.insert((tok.clone(), item.clone())),
                    "an item served twice to a rater"
                );
                let s = c
                    .submit(tok, &item, &json!("pos"), &format!("k{n}"))
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    s,
                    Submitted::Saved {
                        duplicate: false,
                        paused: false
                    }
                );
                n += 1;
                true
            }
            None => false,
        });
    }
    let j = c.judgments().unwrap();
    assert_eq!(j.height(), 30);
    let per_item = j
        .clone()
        .lazy()
        .group_by([col("task")])
        .agg([len().alias("n")])
        .collect()
        .unwrap();
    assert_eq!(per_item.height(), 10);
    assert!(per_item
        .column("n")
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .flatten()
        .all(|v| v == 3));
    let per_rater = j
        .lazy()
        .group_by([col("worker")])
        .agg([len().alias("n")])
        .collect()
        .unwrap();
    // Taking turns, raters share the work nearly evenly.
    let n: Vec<u32> = per_rater
        .column("n")
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert!(
        n.iter().max().unwrap() - n.iter().min().unwrap() <= 2,
        "{n:?}"
    );
}

#[test]
fn gold_items_are_interleaved_and_a_rater_below_the_threshold_is_paused_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let c = Campaign::create(
        dir.path().join("c.db"),
        spec(json!({
        "kind": "label", "choices": ["neg", "pos"], "overlap": 2,
        "gold": {"rate": 0.5, "min_gold": 2, "threshold": 0.75},
        "raters": [{"id": "good"}, {"id": "bad"}]})),
        &items(20, 4),
    )
    .unwrap();
    let truth = |item: &str| {
        if item[1..].parse::<usize>().unwrap() % 2 == 0 {
            "pos"
        } else {
            "neg"
        }
    };
    for (rater, honest) in [("good", true), ("bad", false)] {
        let tok = token(&c, rater);
        for k in 0..6 {
            let Some(item) = next_item(&c, &tok) else {
                break;
            };
            let t = truth(&item);
            let answer = if honest {
                t
            } else if t == "pos" {
                "neg"
            } else {
                "pos"
            };
            c.submit(&tok, &item, &json!(answer), &format!("{rater}{k}"))
                .unwrap()
                .unwrap();
        }
    }
    let q = c.quality().unwrap();
    let paused: Vec<bool> = q
        .column("paused")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(paused, vec![false, true]);
    let acc: Vec<Option<f64>> = q
        .column("gold_accuracy")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(acc, vec![Some(1.0), Some(0.0)]);
    // Every second item was gold: positions 2 and 4 for each rater.
    let j = c.judgments().unwrap();
    let bad = j
        .clone()
        .lazy()
        .filter(col("worker").eq(lit("bad")))
        .collect()
        .unwrap();
    assert_eq!(
        bad.height(),
        4,
        "the bad rater stops at the second gold item"
    );
    let gold: Vec<bool> = bad
        .column("gold")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(gold, vec![false, true, false, true]);
    assert!(bad
        .column("flagged")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .flatten()
        .all(|f| f));
    let tok = token(&c, "bad");
    assert!(matches!(
        c.next(&tok).unwrap().unwrap(),
        Next::Paused { answered: 4 }
    ));
}

#[test]
fn submissions_that_are_not_the_raters_own_are_refused_and_replays_are_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = Campaign::create(
        dir.path().join("c.db"),
        spec(json!({
        "kind": "label", "choices": ["neg", "pos"], "overlap": 1,
        "raters": [{"id": "a"}, {"id": "b"}]})),
        &items(4, 0),
    )
    .unwrap();
    let (a, b) = (token(&c, "a"), token(&c, "b"));
    let item_a = next_item(&c, &a).unwrap();
    // Another rater's item, an item never served, an unknown item, a guessed token.
    assert_eq!(
        c.submit(&b, &item_a, &json!("pos"), "x1").unwrap(),
        Some(Submitted::NotAssigned)
    );
    assert_eq!(
        c.submit(&a, "t3", &json!("pos"), "x2").unwrap().unwrap(),
        Submitted::NotAssigned
    );
    assert_eq!(
        c.submit(&a, "nope", &json!("pos"), "x3").unwrap().unwrap(),
        Submitted::NotAssigned
    );
    assert_eq!(
        c.submit("guess", &item_a, &json!("pos"), "x4").unwrap(),
        None
    );
    assert!(c.next("guess").unwrap().is_none());
    // A bad answer writes nothing.
    assert!(matches!(
        c.submit(&a, &item_a, &json!("maybe"), "x5")
            .unwrap()
            .unwrap(),
        Submitted::Invalid { .. }
    ));
    // The real one, then its replay, then another key for the same item, then the key reused.
    assert_eq!(
        c.submit(&a, &item_a, &json!("pos"), "k").unwrap().unwrap(),
        Submitted::Saved {
            duplicate: false,
            paused: false
        }
    );
    assert_eq!(
        c.submit(&a, &item_a, &json!("pos"), "k").unwrap().unwrap(),
        Submitted::Saved {
            duplicate: true,
            paused: false
        }
    );
    assert_eq!(
        c.submit(&a, &item_a, &json!("neg"), "k2").unwrap().unwrap(),
        Submitted::AlreadyJudged
    );
    // The same rater's key used again for another item; another rater's same key is theirs.
    let next_a = next_item(&c, &a).unwrap();
    assert_eq!(
        c.submit(&a, &next_a, &json!("pos"), "k").unwrap().unwrap(),
        Submitted::KeyReused
    );
    let item_b = next_item(&c, &b).unwrap();
    assert_eq!(
        c.submit(&b, &item_b, &json!("pos"), "k").unwrap().unwrap(),
        Submitted::Saved {
            duplicate: false,
            paused: false
        }
    );
    assert_eq!(c.judgments().unwrap().height(), 2);
}

#[test]
fn every_kind_validates_its_answers_and_tables_use_crowd_kit_columns() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = df!("id" => ["p0", "p1"], "left" => ["x", "y"], "right" => ["y", "z"],
                    "a" => ["A0", "A1"], "b" => ["B0", "B1"], "c" => ["C0", "C1"])
    .unwrap();
    let cases = [
        (
            json!({"kind": "pairwise"}),
            json!("up"),
            json!("right"),
            "label",
            "y",
        ),
        (
            json!({"kind": "rate", "scale": 7}),
            json!(8),
            json!(7),
            "label",
            "7",
        ),
        (
            json!({"kind": "rank", "candidates": ["a", "b", "c"]}),
            json!(["a", "a", "c"]),
            json!(["c", "a", "b"]),
            "label",
            "c>a>b",
        ),
        (
            json!({"kind": "demo"}),
            json!("  "),
            json!("a better answer"),
            "label",
            "a better answer",
        ),
    ];
    for (i, (extra, bad, good, column, stored)) in cases.into_iter().enumerate() {
        let mut s = json!({"raters": [{"id": "r"}], "overlap": 1});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let c = Campaign::create(dir.path().join(format!("{i}.db")), spec(s), &pairs).unwrap();
        let tok = token(&c, "r");
        let item = next_item(&c, &tok).unwrap();
        assert!(
            matches!(
                c.submit(&tok, &item, &bad, "k0").unwrap().unwrap(),
                Submitted::Invalid { .. }
            ),
            "{bad}"
        );
        assert!(matches!(
            c.submit(&tok, &item, &good, "k1").unwrap().unwrap(),
            Submitted::Saved { .. }
        ));
        let j = c.judgments().unwrap();
        let v = j.column(column).unwrap().get(0).unwrap();
        assert_eq!(v.to_string().trim_matches('"'), stored);
        if i == 0 {
            // Pairwise: crowd-kit's `worker, left, right, label` with the winner as label.
            assert_eq!(j.column("left").unwrap().str().unwrap().get(0), Some("x"));
            assert_eq!(j.column("right").unwrap().str().unwrap().get(0), Some("y"));
        }
    }
}

#[test]
fn random_conditions_split_a_group_evenly_and_only_the_assisted_see_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let raters: Vec<_> = (0..6)
        .map(|i| json!({"id": format!("n{i}"), "group": "novice"}))
        .chain([json!({"id": "e", "group": "expert"})])
        .collect();
    let c = Campaign::create(dir.path().join("c.db"), spec(json!({
        "kind": "label", "choices": ["neg", "pos"], "raters": raters,
        "conditions": {"unassisted": {}, "assisted": {"show": ["model"], "heading": "The model says"}},
        "groups": {"novice": "random", "expert": "unassisted"}})), &items(6, 0)).unwrap();
    let links = c.links("http://h:1/").unwrap();
    let cond: Vec<&str> = links
        .column("condition")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(cond.iter().take(6).filter(|c| **c == "assisted").count(), 3);
    assert_eq!(cond[6], "unassisted");
    let urls: Vec<&str> = links
        .column("url")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert!(urls
        .iter()
        .all(|u| u.starts_with("http://h:1/r/") && u.len() == "http://h:1/r/".len() + 43));
    for (i, cond) in cond.iter().enumerate() {
        let rater = links
            .column("rater")
            .unwrap()
            .str()
            .unwrap()
            .get(i)
            .unwrap();
        let Next::Item(a) = c.next(&token(&c, rater)).unwrap().unwrap() else {
            panic!()
        };
        assert_eq!(
            a.fields.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            vec!["text"]
        );
        if *cond == "assisted" {
            assert_eq!(a.assistance.len(), 1);
            assert_eq!(a.assistance_heading, "The model says");
        } else {
            assert!(a.assistance.is_empty());
        }
    }
}

#[test]
fn a_campaign_reopens_with_its_judgments_and_links_and_the_file_holds_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let c = Campaign::create(
        &path,
        spec(json!({
        "kind": "label", "choices": ["neg", "pos"], "raters": [{"id": "a"}]})),
        &items(3, 0),
    )
    .unwrap();
    let tok = token(&c, "a");
    let item = next_item(&c, &tok).unwrap();
    c.submit(&tok, &item, &json!("neg"), "k").unwrap();
    let links = c.links("http://x").unwrap();
    drop(c);
    let c = Campaign::open(&path).unwrap();
    assert_eq!(c.judgments().unwrap().height(), 1);
    assert!(c.links("http://x").unwrap().equals(&links));
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.path().join("c.db-wal")).unwrap_or_default();
    for t in [tok.as_str(), c.admin_token().as_str()] {
        assert!(
            !bytes.windows(t.len()).any(|w| w == t.as_bytes())
                && !wal.windows(t.len()).any(|w| w == t.as_bytes())
        );
    }
    assert!(Campaign::create(&path, c.spec().clone(), &items(3, 0))
        .unwrap_err()
        .to_string()
        .contains("a new file"));
}

#[test]
fn bad_specs_and_items_are_errors_that_name_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let err = serde_json::from_value::<CampaignSpec>(
        json!({"kind": "label", "raters": [], "overlapp": 2}),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("overlapp"), "{err}");
    let bad = [
        (
            json!({"kind": "label", "choices": ["a"], "raters": [{"id": "r"}]}),
            "at least two choices",
        ),
        (
            json!({"kind": "label", "choices": ["neg", "pos"], "raters": [{"id": "r"}], "overlap": 0}),
            "overlap",
        ),
        (
            json!({"kind": "label", "choices": ["neg", "pos"], "raters": [{"id": "r/x"}]}),
            "ids of 1 to 64",
        ),
        (
            json!({"kind": "label", "choices": ["neg", "pos"], "raters": [{"id": "r"}], "show": ["txt"]}),
            "'txt'",
        ),
        (
            json!({"kind": "label", "choices": ["neg", "maybe"], "raters": [{"id": "r"}]}),
            "gold answers among the choices",
        ),
        (
            json!({"kind": "label", "choices": ["neg", "pos"], "raters": [{"id": "r"}], "groups": {"novice": "helped"}}),
            "'helped'",
        ),
        (
            json!({"kind": "rate", "scale": 12, "raters": [{"id": "r"}]}),
            "[2, 11]",
        ),
    ];
    for (i, (s, want)) in bad.into_iter().enumerate() {
        let err = Campaign::create(dir.path().join(format!("{i}.db")), spec(s), &items(4, 2))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("feedback.campaign:") && err.contains(want),
            "{err}"
        );
    }
}

#[test]
fn quality_reports_agreement_and_dawid_skene_skill() {
    let dir = tempfile::tempdir().unwrap();
    let raters: Vec<_> = (0..4).map(|i| json!({"id": format!("r{i}")})).collect();
    let c = Campaign::create(
        dir.path().join("c.db"),
        spec(json!({
        "kind": "label", "choices": ["neg", "pos"], "overlap": 4, "raters": raters})),
        &items(12, 0),
    )
    .unwrap();
    for r in 0..4 {
        let tok = token(&c, &format!("r{r}"));
        let mut k = 0;
        while let Some(item) = next_item(&c, &tok) {
            let i: usize = item[1..].parse().unwrap();
            let truth = if i.is_multiple_of(2) { "pos" } else { "neg" };
            // r3 answers against the truth on two items of every three.
            let answer = if r == 3 && !i.is_multiple_of(3) {
                if truth == "pos" {
                    "neg"
                } else {
                    "pos"
                }
            } else {
                truth
            };
            c.submit(&tok, &item, &json!(answer), &format!("{r}-{k}"))
                .unwrap();
            k += 1;
        }
    }
    let q = c.quality().unwrap();
    let skill: Vec<f64> = q
        .column("skill")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    let alpha: Vec<f64> = q
        .column("alpha")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert!(
        skill[..3].iter().all(|&s| s > 0.9) && skill[3] < 0.5,
        "{skill:?}"
    );
    // The same items for everyone here: one α for all, below 1 because of r3.
    assert!(
        alpha
            .iter()
            .all(|&a| (a - alpha[0]).abs() < 1e-12 && a < 0.9 && a > 0.0),
        "{alpha:?}"
    );
    assert!(q.column("gold_accuracy").unwrap().null_count() == 4);
}

#[test]
fn an_expired_lease_never_overfills_an_item_and_others_wait_for_held_items() {
    let dir = tempfile::tempdir().unwrap();
    let c = Campaign::create(
        dir.path().join("c.db"),
        spec(
            json!({"kind": "label", "choices": ["neg", "pos"], "overlap": 1, "lease_seconds": 1,
                    "raters": [{"id": "a"}, {"id": "b"}]}),
        ),
        &items(1, 0),
    )
    .unwrap();
    let (a, b) = (token(&c, "a"), token(&c, "b"));
    assert_eq!(next_item(&c, &a).as_deref(), Some("t0"));
    // b: the only item is held by a, whose lease has not run out: wait, not done.
    assert!(matches!(c.next(&b).unwrap().unwrap(), Next::Wait { .. }));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // a's lease ran out: b gets the item and judges it.
    assert_eq!(next_item(&c, &b).as_deref(), Some("t0"));
    c.submit(&b, "t0", &json!("pos"), "k").unwrap();
    // a comes back: the item is full, so a's late answer is refused and a is done.
    assert_eq!(
        c.submit(&a, "t0", &json!("neg"), "k").unwrap().unwrap(),
        Submitted::Expired
    );
    assert!(matches!(c.next(&a).unwrap().unwrap(), Next::Done { .. }));
    assert_eq!(c.judgments().unwrap().height(), 1);
}

#[test]
fn idempotency_keys_belong_to_each_rater() {
    let dir = tempfile::tempdir().unwrap();
    let c = Campaign::create(
        dir.path().join("c.db"),
        spec(
            json!({"kind": "label", "choices": ["neg", "pos"], "overlap": 2,
                    "raters": [{"id": "a"}, {"id": "b"}]}),
        ),
        &items(1, 0),
    )
    .unwrap();
    for r in ["a", "b"] {
        let tok = token(&c, r);
        let item = next_item(&c, &tok).unwrap();
        // Both raters use the item id as their key.
        let s = c
            .submit(&tok, &item, &json!("pos"), &item)
            .unwrap()
            .unwrap();
        assert_eq!(
            s,
            Submitted::Saved {
                duplicate: false,
                paused: false
            }
        );
    }
    assert_eq!(c.judgments().unwrap().height(), 2);
}

#[test]
fn the_gold_schedule_follows_its_rule_exactly() {
    // rate 0.7: the n-th item is gold when floor(0.7 n) > floor(0.7 (n - 1)); in floating point
    // 90 × 0.7 is just under 63, which must not move the 90th gold item to the 91st.
    let dir = tempfile::tempdir().unwrap();
    let n = 400;
    let c = Campaign::create(
        dir.path().join("c.db"),
        spec(json!({"kind": "label", "choices": ["neg", "pos"], "overlap": 1,
                    "gold": {"rate": 0.7, "min_gold": 1, "threshold": 0.0}, "raters": [{"id": "r"}]})),
        &items(n, 2),
    )
    .unwrap();
    let tok = token(&c, "r");
    for k in 0..95 {
        let item = next_item(&c, &tok).unwrap();
        c.submit(&tok, &item, &json!("pos"), &format!("k{k}"))
            .unwrap();
    }
    let gold: Vec<bool> = c
        .judgments()
        .unwrap()
        .column("gold")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    for (i, g) in gold.iter().enumerate() {
        let n = (i + 1) as i64;
        let want = (7 * n) / 10 > (7 * (n - 1)) / 10;
        assert_eq!(*g, want, "item {n}");
    }
}

#[test]
fn pairwise_quality_scores_the_side_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let pairs =
        df!("id" => ["p0", "p1", "p2"], "left" => ["x", "y", "z"], "right" => ["y", "z", "x"])
            .unwrap();
    let c = Campaign::create(
        dir.path().join("c.db"),
        spec(json!({"kind": "pairwise", "overlap": 2, "raters": [{"id": "a"}, {"id": "b"}]})),
        &pairs,
    )
    .unwrap();
    for r in ["a", "b"] {
        let tok = token(&c, r);
        let mut k = 0;
        while let Some(item) = next_item(&c, &tok) {
            let side = if item == "p2" { "right" } else { "left" };
            c.submit(&tok, &item, &json!(side), &format!("{k}"))
                .unwrap();
            k += 1;
        }
    }
    let q = c.quality().unwrap();
    // Two raters who agree on every side chosen: two classes (left, right), each skill 1.
    let skill: Vec<f64> = q
        .column("skill")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(skill.len(), 2);
    assert!(skill.iter().all(|s| (s - 1.0).abs() < 1e-6), "{skill:?}");
}

#[test]
fn pairwise_gold_is_a_sides_value_exactly_leading_space_and_all() {
    // Model completions begin with a space; the gold answer is the side's value as stored.
    let dir = tempfile::tempdir().unwrap();
    let pairs = df!("id" => ["p0", "p1", "p2"], "left" => [" good film", " fine", " ok"],
                    "right" => [" bad film", " poor", " meh"],
                    "gold" => [Some(" good film"), None, None])
    .unwrap();
    let c = Campaign::create(
        dir.path().join("c.db"),
        spec(
            json!({"kind": "pairwise", "overlap": 1, "raters": [{"id": "a"}],
                    "gold": {"rate": 0.5, "min_gold": 1, "threshold": 0.0}}),
        ),
        &pairs,
    )
    .unwrap();
    let tok = token(&c, "a");
    let mut k = 0;
    while let Some(item) = next_item(&c, &tok) {
        c.submit(&tok, &item, &json!("left"), &format!("{k}"))
            .unwrap();
        k += 1;
    }
    let j = c.judgments().unwrap();
    let gold = j.column("gold").unwrap().bool().unwrap().clone();
    let correct = j.column("correct").unwrap().bool().unwrap().clone();
    let labels = j.column("label").unwrap().str().unwrap().clone();
    let row = (0..j.height())
        .find(|&i| gold.get(i) == Some(true))
        .unwrap();
    assert_eq!(labels.get(row), Some(" good film"));
    assert_eq!(correct.get(row), Some(true));
}
