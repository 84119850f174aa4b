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
pub const BUILTIN: &[(&str, usize, &str)] = &[(
    "sentiment",
    2,
    "short reviews; the label is the sign of the summed polarity of their sentiment words, \
         each flipped by a preceding 'not'; words follow a Zipf law, so the rare half of them \
         is seen in few reviews",
)];

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
        // `facts` (four made-up names, which one is a <category>?) was removed: the quickstart's
        // weak and strong models both stayed at chance on it (docs/experiments.md).
        let err = builtin_task("facts", 10, 1).unwrap_err().to_string();
        assert!(err.contains("sentiment"), "{err}");
    }
}
