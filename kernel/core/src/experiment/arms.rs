//! Arms: what supervises the strong model on B. Every arm but `weak` and `ceiling` (the two
//! references PGR is measured between) is a [`Supervisor`]: given what may be known about B
//! — its inputs, the weak model's predictions, the novices' labels, an assistant that never saw
//! B — it returns labels or probabilities for B's items, and the runner trains a fresh strong
//! model on them. Custom arms (a Lua function, a Python callable) implement the same trait
//! through one adapter in their front end. Nothing here can read B's expert labels: the context
//! does not hold them.

use std::cell::OnceCell;

use polars::prelude::*;

use super::spec::{Assistance, Aux};
use crate::oversight::{self, Crowd, Level};
use crate::{column_floats, column_strings, Error, Result, Rng};

/// What an arm hands back for B.
#[derive(Clone, Debug)]
pub enum Target {
    /// `id, label` (classes 0..C−1).
    Labels(DataFrame),
    /// `id, p0 … p<C−1>`.
    Probs(DataFrame),
}

/// An arm's supervision of B and how to train on it.
#[derive(Clone, Debug)]
pub struct Supervision {
    pub target: Target,
    /// Train with the auxiliary confidence loss.
    pub aux: Option<Aux>,
    /// Measures of the supervision itself (e.g. the overseers' agreement), recorded with split
    /// `train_b`.
    pub quality: Vec<(&'static str, f64)>,
}

impl Supervision {
    /// What a custom arm returned: hard labels when the frame has a `label` column, else
    /// probabilities; with the context's auxiliary loss when the arm asked for it.
    pub fn from_custom(df: DataFrame, aux: bool, ctx: &Context) -> Self {
        let target = if df.column("label").is_ok() {
            Target::Labels(df)
        } else {
            Target::Probs(df)
        };
        Supervision {
            target,
            aux: aux.then(|| ctx.aux.clone()),
            quality: Vec::new(),
        }
    }

    pub fn labels(df: DataFrame) -> Self {
        Supervision {
            target: Target::Labels(df),
            aux: None,
            quality: Vec::new(),
        }
    }
}

/// Things only some arms need, computed at most once per seed by the runner.
pub trait Services {
    /// The simulated novices' labels on B: `task, worker, label` (task = B's id).
    fn novices(&self) -> Result<DataFrame>;
    /// An assistant's answers on B from models that never saw the items they answer:
    /// `id, pred, p0 … p<C−1>`.
    fn assistant(&self) -> Result<DataFrame>;
}

/// What an arm sees of one seed.
pub struct Context<'a> {
    pub seed: u64,
    pub classes: usize,
    /// The weak model's half, with its truth: `id, input, label, ...`.
    pub a: &'a DataFrame,
    /// B's items without their labels: `id, input` (and `choices`).
    pub b: &'a DataFrame,
    /// The weak model's predictions on B: `id, input, pred, p0 … p<C−1>`.
    pub weak_predictions: &'a DataFrame,
    pub services: &'a dyn Services,
    pub assistance: &'a Assistance,
    pub aux: &'a Aux,
}

/// An arm: supervision for B. `Send + Sync` so that an experiment holding custom arms can live in a
/// front end's value (a Lua userdata, a Python object).
pub trait Supervisor: Send + Sync {
    fn supervise(&self, ctx: &Context) -> Result<Supervision>;
}

/// `naive_w2s` and `aux_w2s`: the weak model's soft labels, with or without the auxiliary loss.
pub struct WeakLabels {
    pub aux: bool,
}

impl Supervisor for WeakLabels {
    fn supervise(&self, ctx: &Context) -> Result<Supervision> {
        let mut cols = vec![col("id")];
        cols.extend((0..ctx.classes).map(|k| col(format!("p{k}"))));
        let probs = ctx
            .weak_predictions
            .clone()
            .lazy()
            .select(cols)
            .collect()
            .map_err(Error::polars(
                "experiment",
                "selecting the weak predictions",
            ))?;
        Ok(Supervision {
            target: Target::Probs(probs),
            aux: self.aux.then(|| ctx.aux.clone()),
            quality: Vec::new(),
        })
    }
}

/// `task, label` of an aggregation as `id, label` with integer labels.
fn as_id_label(labels: &DataFrame) -> Result<DataFrame> {
    labels
        .clone()
        .lazy()
        .select([
            col("task").cast(DataType::String).alias("id"),
            col("label").cast(DataType::Int64),
        ])
        .collect()
        .map_err(Error::polars("experiment", "reading the aggregated labels"))
}

/// The overseers' agreement (Krippendorff's α, nominal); NaN when undefined (one label).
fn alpha(crowd: &DataFrame) -> f64 {
    oversight::krippendorff_alpha(crowd, Level::Nominal).unwrap_or(f64::NAN)
}

/// `crowd_<method>`: the novices' labels aggregated by `method`.
pub struct CrowdArm {
    pub method: String,
}

impl Supervisor for CrowdArm {
    fn supervise(&self, ctx: &Context) -> Result<Supervision> {
        let crowd = ctx.services.novices()?;
        let c = Crowd::from_frame("experiment", &crowd)?;
        let agg = oversight::aggregate_by_name("experiment", &self.method, &c)?;
        let mut s = Supervision::labels(as_id_label(&agg.labels_frame()?)?);
        s.quality.push(("overseer_alpha", alpha(&crowd)));
        Ok(s)
    }
}

/// The probability that a novice adopts the assistant's answer given its confidence `c` (its
/// largest class probability): `trust × c^calibration`. It rises with `trust` and with `c`;
/// `calibration` = 0 ignores the confidence, and larger values lower adoption of unconfident
/// answers more than of confident ones (at c = 1 adoption is `trust` whatever `calibration`).
pub fn adoption(a: &Assistance, confidence: f64) -> f64 {
    a.trust * confidence.clamp(0.0, 1.0).powf(a.calibration)
}

/// The same novices on the same items, each label replaced by the assistant's answer with
/// probability [`adoption`] (Bowman et al.'s human + model condition). Seeded by `seed`.
pub fn assist(
    crowd: &DataFrame,
    assistant: &DataFrame,
    a: &Assistance,
    classes: usize,
    seed: u64,
) -> Result<DataFrame> {
    const OP: &str = "experiment.assist";
    let ids = column_strings(OP, assistant, "id")?;
    let preds = column_floats(OP, assistant, "pred")?;
    let probs: Vec<Vec<f64>> = (0..classes)
        .map(|k| column_floats(OP, assistant, &format!("p{k}")))
        .collect::<Result<_>>()?;
    let by_id: std::collections::HashMap<&str, (i64, f64)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let conf = probs.iter().map(|p| p[i]).fold(0.0, f64::max);
            (id.as_str(), (preds[i] as i64, conf))
        })
        .collect();
    let tasks = column_strings(OP, crowd, "task")?;
    let labels = column_floats(OP, crowd, "label")?;
    let mut rng = Rng::derived(seed, 0xA551);
    let assisted: Vec<i64> = tasks
        .iter()
        .zip(&labels)
        .map(|(t, &own)| match by_id.get(t.as_str()) {
            Some(&(answer, conf)) if rng.uniform() < adoption(a, conf) => answer,
            _ => own as i64,
        })
        .collect();
    let mut out = crowd.clone();
    out.with_column(Column::new("label".into(), assisted))
        .map_err(Error::polars(OP, "replacing the labels"))?;
    Ok(out)
}

/// `unassisted_novices` and `assisted_novices`: the same novices, without or with the
/// assistant's answers, aggregated by majority vote (Bowman et al. pool by vote too).
pub struct Novices {
    pub assisted: bool,
}

impl Supervisor for Novices {
    fn supervise(&self, ctx: &Context) -> Result<Supervision> {
        let mut crowd = ctx.services.novices()?;
        if self.assisted {
            let assistant = ctx.services.assistant()?;
            crowd = assist(&crowd, &assistant, ctx.assistance, ctx.classes, ctx.seed)?;
        }
        let c = Crowd::from_frame("experiment", &crowd)?;
        let mut s =
            Supervision::labels(as_id_label(&oversight::majority_vote(&c).labels_frame()?)?);
        s.quality.push(("overseer_alpha", alpha(&crowd)));
        Ok(s)
    }
}

/// A value computed at most once (per seed).
pub(crate) struct Once<T>(OnceCell<T>);

impl<T: Clone> Once<T> {
    pub fn new() -> Self {
        Once(OnceCell::new())
    }
    pub fn get_or(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if let Some(v) = self.0.get() {
            return Ok(v.clone());
        }
        let v = f()?;
        Ok(self.0.get_or_init(|| v).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adoption_does_what_its_parameters_say() {
        let at = |trust, calibration, c| adoption(&Assistance { trust, calibration }, c);
        for cal in [0.0, 0.5, 1.0, 3.0] {
            // More trust, more adoption; more confidence, no less adoption.
            let mut last = -1.0;
            for c in [0.5, 0.6, 0.8, 0.95, 1.0] {
                let p = at(0.7, cal, c);
                assert!(p >= last && (0.0..=0.7).contains(&p), "{cal} {c} {p}");
                assert!(at(0.9, cal, c) > p);
                last = p;
            }
            assert!((at(0.7, cal, 1.0) - 0.7).abs() < 1e-12);
        }
        // Calibration 0 ignores confidence; more calibration separates confident from
        // unconfident answers more, and lowers adoption of the unconfident ones.
        assert_eq!(at(0.7, 0.0, 0.55), at(0.7, 0.0, 0.99));
        let ratio = |cal| at(0.7, cal, 0.95) / at(0.7, cal, 0.55);
        assert!(ratio(0.5) < ratio(1.0) && ratio(1.0) < ratio(3.0));
        assert!(at(0.7, 3.0, 0.55) < at(0.7, 1.0, 0.55));
    }

    #[test]
    fn assisted_novices_adopt_confident_answers_more_often() {
        let n = 4000;
        let tasks: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let crowd =
            df!("task" => &tasks, "worker" => vec!["w"; n], "label" => vec![0i64; n]).unwrap();
        let conf: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 0.99 } else { 0.55 })
            .collect();
        let assistant = df!("id" => &tasks, "pred" => vec![1i64; n],
            "p0" => conf.iter().map(|c| 1.0 - c).collect::<Vec<_>>(), "p1" => &conf)
        .unwrap();
        let a = Assistance {
            trust: 0.8,
            calibration: 2.0,
        };
        let out = assist(&crowd, &assistant, &a, 2, 3).unwrap();
        let labels = column_floats("t", &out, "label").unwrap();
        let share = |parity| {
            labels
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == parity)
                .map(|(_, l)| *l)
                .sum::<f64>()
                / (n / 2) as f64
        };
        let (confident, unsure) = (share(0), share(1));
        assert!(
            (confident - 0.8 * 0.99f64.powi(2)).abs() < 0.04,
            "{confident}"
        );
        assert!((unsure - 0.8 * 0.55f64.powi(2)).abs() < 0.04, "{unsure}");
    }
}
