//! Built-in tasks with a hidden ground truth, generated offline from a seed. Each is built so
//! that the expert (the truth) beats what a strong model can learn, which beats what a weak
//! model or a novice gets right — and so that the weak side fails on identifiable items (the
//! `difficulty` column), which is what simulated novices and weak-to-strong training need.
//!
//! Schema (also what `sw.tasks.from` checks): `id` (string), `input` (string), optional
//! `choices` (string, `" | "`-separated, for multiple choice), `label` (integer class 0..C-1),
//! `difficulty` (number in [0, 1]).

use polars::prelude::*;

use crate::{Error, Result, Rng};

/// Items of a built-in task when the caller does not say.
pub const DEFAULT_ITEMS: usize = 4000;

/// The built-in tasks: (name, classes, what it is).
pub const BUILTIN: &[(&str, usize, &str)] = &[
    (
        "sentiment",
        2,
        "short reviews; the label is the sign of the summed polarity of their sentiment words, \
         each flipped by a preceding 'not'; words follow a Zipf law, so the rare half of them \
         is seen in few reviews",
    ),
    (
        "facts",
        4,
        "multiple choice: which of four made-up names belongs to a category; names follow a \
         Zipf law, so rare ones are seen in few training questions",
    ),
];

const POSITIVE: [&str; 24] = [
    "good", "great", "fine", "happy", "nice", "bright", "warm", "calm", "clean", "fresh", "kind",
    "sweet", "splendid", "radiant", "serene", "lucid", "genial", "jovial", "pristine", "sublime",
    "deft", "hale", "blithe", "plucky",
];
const NEGATIVE: [&str; 24] = [
    "bad", "poor", "sad", "dull", "cold", "dark", "rude", "weak", "dirty", "sour", "harsh", "grim",
    "dour", "fetid", "morose", "sullen", "vapid", "wan", "rancid", "squalid", "bleak", "drab",
    "churlish", "abject",
];
/// Words 12.. of each list are the rare ones (by their Zipf rank).
const COMMON: usize = 12;
const FILLERS: [&str; 14] = [
    "the", "movie", "plot", "actor", "scene", "was", "and", "it", "felt", "quite", "story",
    "ending", "music", "overall",
];

/// A sentiment word's rank in its list, drawn with Zipf weights 1/(rank + 1): the 12 rare words
/// of a list together make up about 18% of its draws (word 24 alone about 1%), as rare words
/// are in text.
fn zipf_rank(rng: &mut Rng, n: usize) -> usize {
    let total: f64 = (1..=n).map(|r| 1.0 / r as f64).sum();
    let mut u = rng.uniform() * total;
    for r in 0..n {
        let w = 1.0 / (r + 1) as f64;
        if u < w {
            return r;
        }
        u -= w;
    }
    n - 1
}

/// A review of 2–4 sentiment words (a third of them negated) among fillers, words drawn by
/// Zipf rank. The label is 1 when the signed sum is positive (ties are redrawn). Difficulty is
/// what a skimming reader — the weak side's failure mode: knows only the common words and
/// ignores negation — gets wrong: 1 when the skimmer's sum has the wrong sign, 0.5 when it is 0
/// (a guess), 0 when right.
fn sentiment(n: usize, rng: &mut Rng) -> (Vec<String>, Vec<i64>, Vec<f64>) {
    let (mut inputs, mut labels, mut difficulty) = (vec![], vec![], vec![]);
    while inputs.len() < n {
        let k = 2 + rng.below(3);
        let mut words: Vec<String> = Vec::new();
        let (mut score, mut skim) = (0i32, 0i32);
        for _ in 0..k {
            for _ in 0..rng.below(3) {
                words.push(FILLERS[rng.below(FILLERS.len())].to_string());
            }
            let positive = rng.uniform() < 0.5;
            let idx = zipf_rank(rng, POSITIVE.len());
            let word = if positive {
                POSITIVE[idx]
            } else {
                NEGATIVE[idx]
            };
            let negated = rng.uniform() < 1.0 / 3.0;
            if negated {
                words.push("not".into());
            }
            words.push(word.to_string());
            score += if positive != negated { 1 } else { -1 };
            if idx < COMMON {
                skim += if positive { 1 } else { -1 };
            }
        }
        if score == 0 {
            continue;
        }
        let label = i64::from(score > 0);
        inputs.push(words.join(" "));
        labels.push(label);
        difficulty.push(match skim.signum() {
            0 => 0.5,
            s if i64::from(s > 0) == label => 0.0,
            _ => 1.0,
        });
    }
    (inputs, labels, difficulty)
}

const CATEGORIES: [&str; 6] = ["fruit", "metal", "bird", "tool", "river", "dance"];
const SYLLABLES: [&str; 16] = [
    "ka", "zor", "mi", "tel", "vu", "ran", "qui", "bex", "lo", "dra", "fen", "sho", "pim", "gal",
    "nu", "tor",
];

/// 96 made-up names, 16 per category, drawn with Zipf weights 1/rank: a rare name appears in few
/// questions. A question asks which of four names (one of the category, three of others) is a
/// `<category>`; the label is its position. Difficulty is the rarity of the right name.
fn facts(n: usize, rng: &mut Rng) -> (Vec<String>, Vec<String>, Vec<i64>, Vec<f64>) {
    let mut names: Vec<String> = Vec::new();
    let mut world = Rng::new(0x5A4D_5749); // the same names for every seed: the world is fixed
    while names.len() < CATEGORIES.len() * 16 {
        let name: String = (0..2 + world.below(2))
            .map(|_| SYLLABLES[world.below(SYLLABLES.len())])
            .collect();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let per = 16;
    let weights: Vec<f64> = (0..per).map(|r| 1.0 / (r + 1) as f64).collect();
    let total: f64 = weights.iter().sum();
    let draw = |rng: &mut Rng| -> usize {
        let mut u = rng.uniform() * total;
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        per - 1
    };
    let (mut inputs, mut choices, mut labels, mut difficulty) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let cat = rng.below(CATEGORIES.len());
        let rank = draw(rng);
        let right = &names[cat * per + rank];
        let mut options: Vec<&String> = vec![right];
        while options.len() < 4 {
            let other = rng.below(CATEGORIES.len());
            if other == cat {
                continue;
            }
            let cand = &names[other * per + draw(rng)];
            if !options.contains(&cand) {
                options.push(cand);
            }
        }
        rng.shuffle(&mut options);
        let label = options.iter().position(|o| *o == right).expect("present") as i64;
        let listed: Vec<String> = options
            .iter()
            .enumerate()
            .map(|(i, o)| format!("{}) {o}", ["a", "b", "c", "d"][i]))
            .collect();
        inputs.push(format!(
            "which is a {}? {}",
            CATEGORIES[cat],
            listed.join(" ")
        ));
        choices.push(
            options
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(" | "),
        );
        labels.push(label);
        difficulty.push(rank as f64 / (per - 1) as f64);
    }
    (inputs, choices, labels, difficulty)
}

/// A built-in task of `n` items from `seed`.
pub fn builtin_task(name: &str, n: usize, seed: u64) -> Result<DataFrame> {
    const OP: &str = "tasks.builtin";
    if n == 0 {
        return Err(Error::invalid(OP, "n", "a positive number of items", 0));
    }
    let mut rng = Rng::derived(seed, 0x7A5C);
    let ids: Vec<String> = (0..n).map(|i| format!("{name}-{i:05}")).collect();
    let df = match name {
        "sentiment" => {
            let (inputs, labels, difficulty) = sentiment(n, &mut rng);
            df!("id" => ids, "input" => inputs, "label" => labels, "difficulty" => difficulty)
        }
        "facts" => {
            let (inputs, choices, labels, difficulty) = facts(n, &mut rng);
            df!("id" => ids, "input" => inputs, "choices" => choices, "label" => labels,
                "difficulty" => difficulty)
        }
        other => {
            let names: Vec<&str> = BUILTIN.iter().map(|t| t.0).collect();
            return Err(Error::invalid(
                OP,
                "name",
                format!("one of {names:?}"),
                other,
            ));
        }
    };
    df.map_err(Error::polars(OP, "building the task"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_seeded_balanced_and_labelled_by_their_rule() {
        let a = builtin_task("sentiment", 2000, 1).unwrap();
        assert!(a.equals(&builtin_task("sentiment", 2000, 1).unwrap()));
        assert!(!a.equals(&builtin_task("sentiment", 2000, 2).unwrap()));
        let labels = a.column("label").unwrap().i64().unwrap();
        let positive = labels.into_no_null_iter().filter(|&l| l == 1).count();
        assert!((800..1200).contains(&positive), "{positive}");
        // The rule: "not good" counts as negative.
        let inputs = a.column("input").unwrap().str().unwrap();
        for (text, label) in inputs
            .iter()
            .map(|t| t.expect("no nulls"))
            .zip(labels.into_no_null_iter())
            .take(200)
        {
            let words: Vec<&str> = text.split(' ').collect();
            let mut score = 0;
            for (i, w) in words.iter().enumerate() {
                let negated = i > 0 && words[i - 1] == "not";
                if POSITIVE.contains(w) {
                    score += if negated { -1 } else { 1 };
                } else if NEGATIVE.contains(w) {
                    score += if negated { 1 } else { -1 };
                }
            }
            assert_eq!(i64::from(score > 0), label, "{text}");
        }
        let f = builtin_task("facts", 1000, 1).unwrap();
        let per_label: Vec<usize> = (0..4)
            .map(|l| {
                f.column("label")
                    .unwrap()
                    .i64()
                    .unwrap()
                    .into_no_null_iter()
                    .filter(|&x| x == l)
                    .count()
            })
            .collect();
        assert!(per_label.iter().all(|&c| c > 180), "{per_label:?}");
        assert!(builtin_task("nope", 10, 1)
            .unwrap_err()
            .to_string()
            .contains("sentiment"));
    }
}
