//! Simulated overseers: deterministic (seeded) crowds with the failure modes that matter for
//! scalable oversight — uneven skill, class confusions, systematic bias, spammers, label noise,
//! skill that falls with task difficulty — and a model overseer that reports a model's
//! predictions.

use std::collections::HashMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::crowd::{factorize, Keys};
use crate::{column_floats, Error, Result, Rng};

/// How an overseer answers.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Right with probability `accuracy` (lowered by task difficulty), else a uniformly random
    /// wrong label.
    #[default]
    OneCoin,
    /// Rows of `confusion` (true label, in sorted label order) give the answer distribution.
    Confusion,
    /// Uniformly random answers.
    Spammer,
    /// Always `constant`.
    Constant,
    /// The label in `predictions` for the task (a trained model's outputs).
    Model,
}

/// One simulated overseer. Only the fields of its kind may be set.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Overseer {
    pub id: String,
    #[serde(default)]
    pub kind: Kind,
    pub accuracy: Option<f64>,
    pub confusion: Option<Vec<Vec<f64>>>,
    /// The label a constant spammer gives.
    pub constant: Option<String>,
    /// `task → label` for a model overseer (filled by the front end from a DataFrame).
    #[serde(skip)]
    pub predictions: Option<HashMap<String, String>>,
    /// A label this overseer prefers: with probability `bias_strength` they answer it whatever
    /// the task.
    pub bias: Option<String>,
    #[serde(default)]
    pub bias_strength: f64,
    /// The word a `bias = "keyword"` judge of pairs looks for.
    pub keyword: Option<String>,
    /// After answering, replace the answer by a random other label with this probability
    /// (AlpacaFarm's noisy annotators use 0.25).
    #[serde(default)]
    pub flip: f64,
}

fn two() -> usize {
    usize::MAX
}

/// The crowd: who labels, how many per task, with what seed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateOptions {
    pub overseers: Vec<Overseer>,
    /// Labels per task, each task drawn its own `k` overseers (all of them by default).
    #[serde(default = "two")]
    pub k: usize,
    #[serde(default)]
    pub seed: u64,
    /// Add a `confidence` column: the overseer's chance of being right on that task, plus
    /// N(0, `confidence_noise`²) noise, clipped to [0, 1].
    #[serde(default)]
    pub confidence: bool,
    #[serde(default)]
    pub confidence_noise: f64,
}

fn prob(op: &'static str, arg: &'static str, v: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(Error::invalid(op, arg, "a probability in [0, 1]", v))
    }
}

/// The options' own ranges, whatever the data: at least one overseer, distinct ids, every
/// probability in [0, 1], a bias beside its strength, `k` ≥ 1, `confidence_noise` ≥ 0.
impl crate::Options for SimulateOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        use crate::validate::{non_negative, positive_count, probability};
        if self.overseers.is_empty() {
            return Err(Error::invalid(
                op,
                "overseers",
                "at least one overseer",
                "none",
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for ov in &self.overseers {
            if let Some(a) = ov.accuracy {
                probability(op, "accuracy", a)?;
            }
            probability(op, "bias_strength", ov.bias_strength)?;
            probability(op, "flip", ov.flip)?;
            if ov.keyword.is_some() && ov.bias.as_deref() != Some("keyword") {
                return Err(Error::invalid(
                    op,
                    "keyword",
                    format!("bias = 'keyword' beside it (overseer '{}')", ov.id),
                    ov.bias
                        .as_deref()
                        .map_or("no bias".to_string(), |b| format!("bias '{b}'")),
                ));
            }
            if ov.bias.is_none() && ov.bias_strength != 0.0 {
                return Err(Error::invalid(
                    op,
                    "bias_strength",
                    format!("a 'bias' beside it (overseer '{}')", ov.id),
                    ov.bias_strength,
                ));
            }
            if !ids.insert(ov.id.as_str()) {
                return Err(Error::invalid(
                    op,
                    "overseers",
                    "distinct ids",
                    format!("'{}' twice", ov.id),
                ));
            }
        }
        positive_count(op, "k", self.k)?;
        non_negative(op, "confidence_noise", self.confidence_noise)
    }
}

/// Checks shared by both simulators: a non-empty table and the options' ranges.
fn check_inputs(
    op: &'static str,
    arg: &'static str,
    rows: usize,
    o: &SimulateOptions,
) -> Result<()> {
    if rows == 0 {
        return Err(Error::invalid(
            op,
            arg,
            "at least one row",
            "an empty table",
        ));
    }
    crate::Options::check(o, op)
}

/// Labels for the tasks of `gold` (`task, true_label`, optionally `difficulty` in [0, 1]).
/// Returns `task, worker, label` (and `confidence`), tasks in gold order, overseers in the
/// order drawn. The label set is the distinct true labels.
pub fn simulate(gold: &DataFrame, o: &SimulateOptions) -> Result<DataFrame> {
    const OP: &str = "overseers.simulate";
    check_inputs(OP, "gold", gold.height(), o)?;
    if let Some(ov) = o.overseers.iter().find(|ov| ov.keyword.is_some()) {
        return Err(Error::invalid(
            OP,
            "keyword",
            "a keyword bias only in pairwise judgments (simulate_pairwise)",
            format!("overseer '{}'", ov.id),
        ));
    }
    let (labels, truth) = factorize(OP, gold, "true_label")?;
    factorize(OP, gold, "task")?; // the task column must be usable keys
    let k = labels.len();
    let label_index: HashMap<String, usize> = (0..k).map(|i| (labels.name(i), i)).collect();
    let lookup = |arg: &'static str, name: &str| -> Result<usize> {
        label_index.get(name).copied().ok_or_else(|| {
            Error::invalid(
                OP,
                arg,
                format!(
                    "one of the labels {:?}",
                    (0..k).map(|i| labels.name(i)).collect::<Vec<_>>()
                ),
                format!("'{name}'"),
            )
        })
    };
    let difficulty = if gold.column("difficulty").is_ok() {
        let d = column_floats(OP, gold, "difficulty")?;
        for &v in &d {
            prob(OP, "difficulty", v)?;
        }
        Some(d)
    } else {
        None
    };
    let task_names: Vec<String> = {
        let c = gold
            .column("task")
            .expect("factorized")
            .cast(&DataType::String)
            .map_err(Error::polars(OP, "reading task"))?;
        c.str()
            .expect("cast")
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect()
    };
    // Validate every overseer before drawing anything.
    struct Plan {
        kind: Kind,
        accuracy: f64,
        confusion: Vec<Vec<f64>>,
        constant: usize,
        bias: Option<(usize, f64)>,
        flip: f64,
    }
    let mut plans = Vec::with_capacity(o.overseers.len());
    for ov in &o.overseers {
        let set = |name: &str, present: bool, allowed: bool| -> Result<()> {
            if present && !allowed {
                return Err(Error::invalid(
                    OP,
                    "overseers",
                    format!("no '{name}' on a {:?} overseer ('{}')", ov.kind, ov.id).to_lowercase(),
                    name,
                ));
            }
            Ok(())
        };
        set("accuracy", ov.accuracy.is_some(), ov.kind == Kind::OneCoin)?;
        set(
            "confusion",
            ov.confusion.is_some(),
            ov.kind == Kind::Confusion,
        )?;
        set("constant", ov.constant.is_some(), ov.kind == Kind::Constant)?;
        let accuracy = match (&ov.kind, ov.accuracy) {
            (Kind::OneCoin, Some(a)) => a, // in [0, 1]: checked with the options
            (Kind::OneCoin, None) => {
                return Err(Error::invalid(
                    OP,
                    "overseers",
                    format!("an 'accuracy' for one-coin overseer '{}'", ov.id),
                    "none",
                ))
            }
            _ => 0.0,
        };
        let confusion = match (&ov.kind, &ov.confusion) {
            (Kind::Confusion, Some(m)) => {
                if m.len() != k
                    || m.iter().any(|r| {
                        r.len() != k
                            || (r.iter().sum::<f64>() - 1.0).abs() > 1e-6
                            || r.iter().any(|p| !(0.0..=1.0).contains(p))
                    })
                {
                    return Err(Error::invalid(OP, "confusion", format!("a {k}×{k} matrix of probabilities whose rows sum to 1 (rows: true labels in sorted order)"), format!("{m:?}")));
                }
                m.clone()
            }
            (Kind::Confusion, None) => {
                return Err(Error::invalid(
                    OP,
                    "overseers",
                    format!("a 'confusion' matrix for overseer '{}'", ov.id),
                    "none",
                ))
            }
            _ => vec![],
        };
        let constant = match (&ov.kind, &ov.constant) {
            (Kind::Constant, Some(c)) => lookup("constant", c)?,
            _ => 0,
        };
        if ov.kind == Kind::Model && ov.predictions.is_none() {
            return Err(Error::invalid(
                OP,
                "overseers",
                format!("predictions for model overseer '{}'", ov.id),
                "none",
            ));
        }
        let bias = match &ov.bias {
            Some(b) => Some((lookup("bias", b)?, ov.bias_strength)),
            None => None,
        };
        plans.push(Plan {
            kind: ov.kind.clone(),
            accuracy,
            confusion,
            constant,
            bias,
            flip: ov.flip,
        });
    }
    let per_task = o.k.min(plans.len());
    let mut rng = Rng::new(o.seed);
    let (mut out_task, mut out_worker, mut out_label, mut out_conf) =
        (vec![], vec![], vec![], vec![]);
    let uniform = 1.0 / k as f64;
    for t in 0..gold.height() {
        let truth_t = truth[t] as usize;
        let d = difficulty.as_ref().map_or(0.0, |d| d[t]);
        let mut who: Vec<usize> = (0..plans.len()).collect();
        rng.shuffle(&mut who);
        for &w in &who[..per_task] {
            let p = &plans[w];
            let other = |rng: &mut Rng, not: usize| -> usize {
                if k == 1 {
                    return not;
                }
                let x = rng.below(k - 1);
                if x >= not {
                    x + 1
                } else {
                    x
                }
            };
            let (mut label, mut chance) = match p.kind {
                Kind::OneCoin => {
                    let acc = uniform + (p.accuracy - uniform) * (1.0 - d);
                    let l = if rng.uniform() < acc {
                        truth_t
                    } else {
                        other(&mut rng, truth_t)
                    };
                    (l, acc)
                }
                Kind::Confusion => {
                    let row = &p.confusion[truth_t];
                    let u = rng.uniform();
                    let mut acc = 0.0;
                    let l = row.iter().position(|q| {
                        acc += q;
                        u < acc
                    });
                    (l.unwrap_or(k - 1), row[truth_t])
                }
                Kind::Spammer => (rng.below(k), uniform),
                Kind::Constant => (p.constant, f64::from(u8::from(p.constant == truth_t))),
                Kind::Model => {
                    let preds = o.overseers[w].predictions.as_ref().expect("validated");
                    let name = &task_names[t];
                    let given = preds.get(name).ok_or_else(|| {
                        Error::invalid(
                            OP,
                            "predictions",
                            format!(
                                "a prediction for every task (model overseer '{}')",
                                o.overseers[w].id
                            ),
                            format!("none for task '{name}'"),
                        )
                    })?;
                    let l = lookup("predictions", given)?;
                    (l, f64::from(u8::from(l == truth_t)))
                }
            };
            if let Some((b, s)) = p.bias {
                if rng.uniform() < s {
                    label = b;
                    chance = f64::from(u8::from(b == truth_t));
                }
            }
            if p.flip > 0.0 && rng.uniform() < p.flip {
                label = other(&mut rng, label);
                chance *= 1.0 - p.flip;
            }
            out_task.push(t);
            out_worker.push(o.overseers[w].id.clone());
            out_label.push(label);
            if o.confidence {
                let noisy = chance + o.confidence_noise * rng.normal();
                out_conf.push(noisy.clamp(0.0, 1.0));
            }
        }
    }
    let task_col = gold
        .column("task")
        .expect("factorized")
        .as_materialized_series()
        .take(&IdxCa::from_vec(
            "task".into(),
            out_task.iter().map(|&t| t as IdxSize).collect(),
        ))
        .map_err(Error::polars(OP, "building the labels"))?;
    let mut cols = vec![
        task_col.into_column(),
        Column::new("worker".into(), out_worker),
        label_column(&labels, &out_label),
    ];
    if o.confidence {
        cols.push(Column::new("confidence".into(), out_conf));
    }
    DataFrame::new_infer_height(cols).map_err(Error::polars(OP, "building the labels"))
}

fn label_column(labels: &Keys, idx: &[usize]) -> Column {
    labels.column("label", idx.iter().copied())
}

/// Pairwise judgments for `pairs` (`left, right, winner`, optionally `left_length`,
/// `right_length` and `difficulty`): each of `k` overseers per pair names the better side.
/// One-coin overseers pick the true winner with their (difficulty-lowered) accuracy; spammers
/// pick a side at random. `bias` may be `first`, `second`, `longer` or `shorter` (the position
/// and verbosity biases of LLM and human judges) or `keyword` (the side whose text has the
/// overseer's `keyword` as a word, when only one side has it), applied with probability
/// `bias_strength`; `flip` then swaps the answer with its probability. Returns `worker, left,
/// right, label` (crowd-kit's pairwise schema) followed by the pair's other columns (`winner`,
/// a `prompt`, ...), pairs in input order.
pub fn simulate_pairwise(pairs: &DataFrame, o: &SimulateOptions) -> Result<DataFrame> {
    const OP: &str = "overseers.simulate_pairwise";
    check_inputs(OP, "pairs", pairs.height(), o)?;
    if o.confidence || o.confidence_noise != 0.0 {
        return Err(Error::invalid(
            OP,
            "confidence",
            "no confidence reports for pairwise judgments",
            "confidence options",
        ));
    }
    if let Some(ov) = o.overseers.iter().find(|ov| {
        matches!(ov.kind, Kind::OneCoin | Kind::Spammer)
            && (ov.confusion.is_some() || ov.constant.is_some())
    }) {
        return Err(Error::invalid(
            OP,
            "overseers",
            "no 'confusion' or 'constant' in pairwise judgments",
            format!("overseer '{}'", ov.id),
        ));
    }
    let strings = |c: &str| -> Result<Vec<String>> {
        let col = pairs.column(c).map_err(|_| {
            Error::invalid(
                OP,
                "pairs",
                format!("a column '{c}'"),
                format!("columns {:?}", pairs.get_column_names()),
            )
        })?;
        let s = col
            .cast(&DataType::String)
            .map_err(Error::polars(OP, format!("reading '{c}'")))?;
        s.str()
            .expect("cast")
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.map(str::to_string).ok_or_else(|| {
                    Error::invalid(
                        OP,
                        "pairs",
                        format!("no missing values in '{c}'"),
                        format!("null in row {}", i + 1),
                    )
                })
            })
            .collect()
    };
    let (left, right, winner) = (strings("left")?, strings("right")?, strings("winner")?);
    for i in 0..left.len() {
        if winner[i] != left[i] && winner[i] != right[i] {
            return Err(Error::invalid(
                OP,
                "pairs",
                "a winner equal to left or right",
                format!("'{}' in row {}", winner[i], i + 1),
            ));
        }
    }
    let optional = |c: &str| -> Result<Option<Vec<f64>>> {
        if pairs.column(c).is_ok() {
            column_floats(OP, pairs, c).map(Some)
        } else {
            Ok(None)
        }
    };
    let (left_len, right_len, difficulty) = (
        optional("left_length")?,
        optional("right_length")?,
        optional("difficulty")?,
    );
    if let Some(d) = &difficulty {
        for &v in d {
            prob(OP, "difficulty", v)?;
        }
    }
    #[derive(Clone, PartialEq)]
    enum Bias {
        First,
        Second,
        Longer,
        Shorter,
        Keyword(String),
    }
    let mut plans = Vec::with_capacity(o.overseers.len());
    for ov in &o.overseers {
        let accuracy = match (&ov.kind, ov.accuracy) {
            (Kind::OneCoin, Some(a)) => a, // in [0, 1]: checked with the options
            (Kind::OneCoin, None) => {
                return Err(Error::invalid(
                    OP,
                    "overseers",
                    format!("an 'accuracy' for one-coin overseer '{}'", ov.id),
                    "none",
                ))
            }
            (Kind::Spammer, None) => 0.5,
            (kind, _) => {
                return Err(Error::invalid(
                    OP,
                    "overseers",
                    "one_coin or spammer overseers for pairwise judgments",
                    format!("{kind:?} '{}'", ov.id).to_lowercase(),
                ))
            }
        };
        let bias =
            match ov.bias.as_deref() {
                None => None,
                Some("first") => Some(Bias::First),
                Some("second") => Some(Bias::Second),
                Some(b @ ("longer" | "shorter")) => {
                    if left_len.is_none() || right_len.is_none() {
                        return Err(Error::invalid(
                            OP,
                            "pairs",
                            format!("left_length and right_length columns for a '{b}' bias"),
                            "none",
                        ));
                    }
                    Some(if b == "longer" {
                        Bias::Longer
                    } else {
                        Bias::Shorter
                    })
                }
                Some("keyword") => match ov.keyword.as_deref() {
                    // A word as `has_word` compares them: no spaces, no punctuation at its edges.
                    Some(k)
                        if !k.is_empty()
                            && !k.contains(char::is_whitespace)
                            && k == k.trim_matches(|c: char| !c.is_alphanumeric()) =>
                    {
                        Some(Bias::Keyword(k.to_lowercase()))
                    }
                    other => {
                        return Err(Error::invalid(
                            OP,
                            "keyword",
                            format!(
                                "one word without punctuation at its edges beside bias = \
                                 'keyword' (overseer '{}')",
                                ov.id
                            ),
                            other.map_or("none".to_string(), |k| format!("'{k}'")),
                        ))
                    }
                },
                Some(other) => return Err(Error::invalid(
                    OP,
                    "bias",
                    "'first', 'second', 'longer', 'shorter' or 'keyword' for pairwise judgments",
                    format!("'{other}'"),
                )),
            };
        plans.push((accuracy, bias, ov.bias_strength, ov.flip));
    }
    let per_pair = o.k.min(plans.len());
    let mut rng = Rng::new(o.seed);
    let (mut w_out, mut l_out, mut r_out, mut lab_out) = (vec![], vec![], vec![], vec![]);
    let mut source: Vec<IdxSize> = vec![];
    for i in 0..left.len() {
        let d = difficulty.as_ref().map_or(0.0, |d| d[i]);
        let truth_left = winner[i] == left[i];
        let mut who: Vec<usize> = (0..plans.len()).collect();
        rng.shuffle(&mut who);
        for &w in &who[..per_pair] {
            let (accuracy, bias, strength, flip) = &plans[w];
            let (accuracy, strength, flip) = (*accuracy, *strength, *flip);
            let acc = 0.5 + (accuracy - 0.5) * (1.0 - d);
            let mut picks_left = if rng.uniform() < acc {
                truth_left
            } else {
                !truth_left
            };
            if let Some(b) = bias {
                if rng.uniform() < strength {
                    let (ll, rl) = (
                        left_len.as_ref().map_or(0.0, |v| v[i]),
                        right_len.as_ref().map_or(0.0, |v| v[i]),
                    );
                    picks_left = match b {
                        Bias::First => true,
                        Bias::Second => false,
                        Bias::Longer => ll >= rl,
                        Bias::Shorter => ll <= rl,
                        Bias::Keyword(k) => match (has_word(&left[i], k), has_word(&right[i], k)) {
                            (true, false) => true,
                            (false, true) => false,
                            _ => picks_left,
                        },
                    };
                }
            }
            if flip > 0.0 && rng.uniform() < flip {
                picks_left = !picks_left;
            }
            source.push(i as IdxSize);
            w_out.push(o.overseers[w].id.clone());
            l_out.push(left[i].clone());
            r_out.push(right[i].clone());
            lab_out.push(if picks_left {
                left[i].clone()
            } else {
                right[i].clone()
            });
        }
    }
    let mut columns = vec![
        Column::new("worker".into(), w_out),
        Column::new("left".into(), l_out),
        Column::new("right".into(), r_out),
        Column::new("label".into(), lab_out),
    ];
    // The pair's other columns (its winner, a prompt, an id) go with each of its judgments.
    let own = ["left", "right"];
    let rows = IdxCa::from_vec("row".into(), source);
    for c in pairs.columns() {
        if own.contains(&c.name().as_str()) {
            continue;
        }
        if ["worker", "label"].contains(&c.name().as_str()) {
            return Err(Error::invalid(
                OP,
                "pairs",
                "no columns named 'worker' or 'label' (the judgments' own)",
                format!("columns {:?}", pairs.get_column_names()),
            ));
        }
        columns.push(
            c.take(&rows)
                .map_err(Error::polars(OP, "carrying the pairs' columns"))?,
        );
    }
    DataFrame::new_infer_height(columns).map_err(Error::polars(OP, "building the judgments"))
}

/// Whether `text` has `word` (lowercase) as a whole word, ignoring case and punctuation.
fn has_word(text: &str, word: &str) -> bool {
    text.split_whitespace().any(|w| {
        w.trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase()
            == word
    })
}
