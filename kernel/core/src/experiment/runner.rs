//! The runner: for each seed, split the task, train the weak model and the ceiling, ask every
//! arm for its supervision of B, train a fresh strong model on it, and score everything on the
//! seed's test items. Results, per-item correctness and training curves are DataFrames; PGR and
//! comparisons are intervals over seeds (`oversight::ratio_interval`, `mean_interval`).

use std::collections::HashMap;
use std::path::PathBuf;

use polars::prelude::*;

use super::arms::{
    Context, CrowdArm, Novices as NoviceArm, Once, Services, Supervision, Supervisor, Target,
    WeakLabels,
};
use super::seeds::{pgr_table, PgrOptions};
use super::spec::{ArmKind, HeadInit, ModelSpec, Side, Spec};
use super::{builtin_task, check_task, frame_hash, word_tokenizer};
use crate::model::Model;
use crate::oversight::{self, mean_interval, ratio_interval, SimulateOptions};
use crate::train::{self, classify_dataset, Hooks, Labels, StepReport};
use crate::{column_floats, column_strings, Error, Interrupt, Progress, Result, Rng};

const OP: &str = "experiment";

/// `(arm, seed, report)` after every optimizer step of every model.
pub type ArmStepHook<'a> = dyn Fn(&str, u64, &StepReport) -> Result<()> + 'a;
/// `(arm, seed, test accuracy)` after each arm of each seed.
pub type ArmDoneHook<'a> = dyn Fn(&str, u64, f64) -> Result<()> + 'a;

/// Where a run reports, what stops it, and the caller's per-step and per-arm callbacks.
#[derive(Clone, Copy)]
pub struct RunHooks<'a> {
    pub progress: &'a dyn Progress,
    pub interrupt: Option<&'a Interrupt>,
    pub on_step: Option<&'a ArmStepHook<'a>>,
    pub on_arm_done: Option<&'a ArmDoneHook<'a>>,
}

/// Progress of one training run, named after the experiment, the arm and the seed.
struct Named<'a> {
    inner: &'a dyn Progress,
    name: String,
}

impl Progress for Named<'_> {
    fn start(&self, _job: &str, total: usize) {
        self.inner.start(&self.name, total);
    }
    fn update(&self, done: usize, info: &str) {
        self.inner.update(done, info);
    }
    fn finish(&self) {
        self.inner.finish();
    }
}

/// An experiment: its spec, its task and, once run, its results.
pub struct Experiment {
    pub name: String,
    pub spec: Spec,
    pub task: DataFrame,
    pub classes: usize,
    kinds: Vec<ArmKind>,
    custom: HashMap<String, Box<dyn Supervisor>>,
    tokenizer: Option<PathBuf>,
    /// `arm, seed, split, metric, value` (after `run`).
    pub results: Option<DataFrame>,
    /// `arm, seed, id, correct` on the test items (after `run`).
    pub items: Option<DataFrame>,
    /// `arm, seed, step, loss` of every training run (after `run`).
    pub curves: Option<DataFrame>,
}

/// A seed's three parts.
struct Split {
    a: DataFrame,
    b: DataFrame,
    test: DataFrame,
}

/// Rows of the results table.
#[derive(Default)]
struct Rows {
    arm: Vec<String>,
    seed: Vec<i64>,
    split: Vec<String>,
    metric: Vec<String>,
    value: Vec<f64>,
}

impl Rows {
    fn push(&mut self, arm: &str, seed: u64, split: &str, metric: &str, value: f64) {
        self.arm.push(arm.to_string());
        self.seed.push(seed as i64);
        self.split.push(split.to_string());
        self.metric.push(metric.to_string());
        self.value.push(value);
    }

    /// Appends the rows of `results` (a shard's, all of `seed`) on `split`. (The seed is the
    /// unit's, not read back through floats: seeds are any u64.)
    fn extend_split(&mut self, results: &DataFrame, split: &str, seed: u64) -> Result<()> {
        let arms = column_strings(OP, results, "arm")?;
        let splits = column_strings(OP, results, "split")?;
        let metrics = column_strings(OP, results, "metric")?;
        let values = column_floats(OP, results, "value")?;
        for i in (0..arms.len()).filter(|&i| splits[i] == split) {
            self.push(&arms[i], seed, split, &metrics[i], values[i]);
        }
        Ok(())
    }

    /// `arm, seed, split, metric, value`.
    fn frame(self) -> Result<DataFrame> {
        DataFrame::new_infer_height(vec![
            Column::new("arm".into(), self.arm),
            Column::new("seed".into(), self.seed),
            Column::new("split".into(), self.split),
            Column::new("metric".into(), self.metric),
            Column::new("value".into(), self.value),
        ])
        .map_err(Error::polars(OP, "building the results"))
    }
}

/// One unit of an experiment: an arm (or a reference, `weak` or `ceiling`) of one seed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub seed: u64,
    pub arm: String,
}

/// What one unit produced: its rows of the results, its test items and its training curve,
/// and the curves of models its seed's services trained (the assistant's folds).
#[derive(Clone, Debug)]
pub struct Shard {
    pub unit: Unit,
    pub results: DataFrame,
    pub items: DataFrame,
    pub curves: DataFrame,
    pub service_curves: Vec<DataFrame>,
}

fn select(df: &DataFrame, cols: &[&str]) -> Result<DataFrame> {
    df.select(cols.iter().copied())
        .map_err(Error::polars(OP, format!("selecting {cols:?}")))
}

fn take(df: &DataFrame, idx: &[u32]) -> Result<DataFrame> {
    df.take(&IdxCa::from_vec("idx".into(), idx.to_vec()))
        .map_err(Error::polars(OP, "splitting the task"))
}

fn with_arm_seed(df: DataFrame, arm: &str, seed: u64) -> Result<DataFrame> {
    df.lazy()
        .with_columns([
            lit(arm.to_string()).alias("arm"),
            lit(seed as i64).alias("seed"),
        ])
        .collect()
        .map_err(Error::polars(OP, "tagging a table"))
}

fn stack(frames: Vec<DataFrame>) -> Result<Option<DataFrame>> {
    if frames.is_empty() {
        return Ok(None);
    }
    let lazy: Vec<LazyFrame> = frames.into_iter().map(IntoLazy::lazy).collect();
    concat(lazy, UnionArgs::default())
        .and_then(LazyFrame::collect)
        .map(Some)
        .map_err(Error::polars(OP, "stacking tables"))
}

/// The per-seed services arms may need (novices, assistant), computed at most once.
struct SeedServices<'a> {
    exp: &'a Experiment,
    seed: u64,
    /// B with its truth (never handed to an arm).
    b_truth: &'a DataFrame,
    weak_predictions: &'a DataFrame,
    hooks: RunHooks<'a>,
    novices: Once<DataFrame>,
    assistant: Once<DataFrame>,
    curves: std::cell::RefCell<Vec<DataFrame>>,
}

impl Services for SeedServices<'_> {
    fn novices(&self) -> Result<DataFrame> {
        self.novices.get_or(|| {
            let nov = &self.exp.spec.overseers.as_ref().ok_or_else(|| {
                Error::invalid(OP, "overseers.novices", "novices for this arm", "none")
            })?;
            let mut gold = vec!["id", "label"];
            if self.b_truth.column("difficulty").is_ok() {
                gold.push("difficulty");
            }
            let mut gold = select(self.b_truth, &gold)?;
            gold.rename("id", "task".into())
                .and_then(|g| g.rename("label", "true_label".into()))
                .map_err(Error::polars(OP, "naming the gold columns"))?;
            let o = SimulateOptions {
                overseers: nov.novices.overseers.clone(),
                k: nov.novices.k,
                seed: self.seed,
                confidence: false,
                confidence_noise: 0.0,
            };
            oversight::simulate(&gold, &o)
        })
    }

    /// Cross-fitted: B is split in two folds (seeded); a fresh strong model is trained on
    /// each fold with the weak model's soft labels (as `naive_w2s`) and answers the other fold.
    fn assistant(&self) -> Result<DataFrame> {
        self.assistant.get_or(|| {
            let n = self.weak_predictions.height();
            let mut order: Vec<u32> = (0..n as u32).collect();
            Rng::derived(self.seed, 0xF01D).shuffle(&mut order);
            let (f0, f1) = order.split_at(n / 2);
            let probs: Vec<String> = (0..self.exp.classes).map(|k| format!("p{k}")).collect();
            let mut answers = Vec::new();
            for (fold, (train_on, answer)) in [(f0, f1), (f1, f0)].into_iter().enumerate() {
                let data = take(self.weak_predictions, train_on)?;
                let (m, curve) = self.exp.train_model(
                    &self.exp.spec.strong,
                    &data,
                    Labels::Probs(probs.clone()),
                    None,
                    "assistant",
                    self.seed,
                    self.hooks,
                )?;
                self.curves.borrow_mut().push(with_arm_seed(
                    curve,
                    &format!("assistant_fold{fold}"),
                    self.seed,
                )?);
                let items = take(self.weak_predictions, answer)?;
                let pred = self.exp.predict(&m, &items)?;
                answers.push(pred);
            }
            Ok(stack(answers)?.expect("two folds"))
        })
    }
}

/// The word tokenizer built for this experiment lives only as long as the experiment: models
/// read it when they are built, and no saved artefact points at it (a manifest regenerates it).
/// (A process that exits without dropping its experiments, as the command line does, is
/// covered by `run` removing it when it returns.)
impl Drop for Experiment {
    fn drop(&mut self) {
        self.remove_tokenizer();
    }
}

impl Experiment {
    /// Checks `spec` and builds the task: `task` is the DataFrame of a spec whose task is a
    /// DataFrame (its hash is recorded), `None` for a built-in task. `custom` are the custom
    /// arms by name.
    pub fn new(
        name: &str,
        mut spec: Spec,
        task: Option<DataFrame>,
        custom: HashMap<String, Box<dyn Supervisor>>,
    ) -> Result<Self> {
        let names: Vec<String> = custom.keys().cloned().collect();
        if let Some(extra) = names.iter().find(|n| !spec.arms.contains(n)) {
            return Err(Error::invalid(
                OP,
                "arms",
                "every custom arm listed in arms",
                format!("'{extra}' missing"),
            ));
        }
        let task = match (task, &spec.task.builtin) {
            (Some(df), None) => {
                spec.task.dataframe_hash = Some(frame_hash(&df)?);
                spec.task.rows = Some(df.height());
                df
            }
            (None, Some(b)) => builtin_task(
                b,
                spec.task.n.unwrap_or(super::DEFAULT_ITEMS),
                spec.task.seed,
            )?,
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    OP,
                    "task",
                    "a DataFrame or a built-in task, not both",
                    "both",
                ))
            }
            (None, None) => {
                return Err(Error::invalid(
                    OP,
                    "task",
                    "a task DataFrame, or {builtin = name, n = items, seed = s}",
                    "none",
                ))
            }
        };
        spec.check(&names)?;
        let kinds = spec.arm_kinds(&names)?;
        let classes = check_task(OP, &task)?;
        let n_test = (task.height() as f64 * spec.split.test).floor() as usize;
        if n_test == 0 || (task.height() - n_test) / 2 == 0 {
            return Err(Error::invalid(
                OP,
                "split.test",
                "a split that leaves test items and two non-empty halves",
                format!("{} of {} items", spec.split.test, task.height()),
            ));
        }
        Ok(Experiment {
            name: name.to_string(),
            spec,
            task,
            classes,
            kinds,
            custom,
            tokenizer: None,
            results: None,
            items: None,
            curves: None,
        })
    }

    /// The names of the custom arms.
    pub fn custom_names(&self) -> Vec<String> {
        self.custom.keys().cloned().collect()
    }

    /// The arms in the spec's order.
    pub fn arms(&self) -> &[String] {
        &self.spec.arms
    }

    /// The seed's split, as openai/weak-to-strong: shuffle (seeded), hold out `split.test` of
    /// the items, then halves A (the weak model's) and B (the strong arms').
    fn split(&self, seed: u64) -> Result<Split> {
        let n = self.task.height();
        let mut order: Vec<u32> = (0..n as u32).collect();
        Rng::derived(seed, 0x5917).shuffle(&mut order);
        let n_test = (n as f64 * self.spec.split.test).floor() as usize;
        let n_a = (n - n_test) / 2;
        Ok(Split {
            a: take(&self.task, &order[..n_a])?,
            b: take(&self.task, &order[n_a..n - n_test])?,
            test: take(&self.task, &order[n - n_test..])?,
        })
    }

    /// The word-level tokenizer of models built from scratch (made once per experiment).
    fn tokenizer(&mut self) -> Result<Option<String>> {
        let needs = [&self.spec.strong, &self.spec.weak]
            .iter()
            .any(|s| matches!(s.model, ModelSpec::New(_)));
        if !needs {
            return Ok(None);
        }
        if let Some(t) = &self.spec.tokenizer {
            return Ok(Some(t.clone()));
        }
        if self.tokenizer.is_none() {
            // One directory per experiment: two experiments on the same task in one process
            // (tests run in parallel) must not rewrite a tokenizer.json the other is reading.
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "sandwich-tokenizer-{}-{}-{}",
                frame_hash(&self.task)?,
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            word_tokenizer(&self.task, &["input"], &dir)?;
            self.tokenizer = Some(dir);
        }
        Ok(self.tokenizer.as_ref().map(|p| p.display().to_string()))
    }

    fn remove_tokenizer(&mut self) {
        if let Some(dir) = self.tokenizer.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// A fresh model of `side` with a classification head for this task.
    fn fresh(&self, side: &Side, seed: u64) -> Result<Model> {
        let mut m = match &side.model {
            ModelSpec::New(o) => {
                let mut o = o.clone();
                o.tokenizer = self.tokenizer.as_ref().map(|p| p.display().to_string());
                if let Some(t) = &self.spec.tokenizer {
                    o.tokenizer = Some(t.clone());
                }
                o.num_labels = Some(self.classes);
                o.head = Some("classify".into());
                o.seed = seed;
                Model::new_from(&o)?
            }
            ModelSpec::Load { path, options } => {
                let mut o = options.clone();
                o.head = Some("classify".into());
                o.num_labels = Some(self.classes);
                o.seed = seed;
                Model::load_with(std::path::Path::new(path), &o)?
            }
        };
        if side.head_init.unwrap_or(self.spec.head_init) == HeadInit::Zeros {
            m.zero_head()?;
        }
        Ok(m)
    }

    /// Trains a fresh model of `side` on `data` (`input` and the labels); returns it and its
    /// per-step metrics.
    #[allow(clippy::too_many_arguments)]
    fn train_model(
        &self,
        side: &Side,
        data: &DataFrame,
        labels: Labels,
        aux: Option<&super::spec::Aux>,
        arm: &str,
        seed: u64,
        hooks: RunHooks,
    ) -> Result<(Model, DataFrame)> {
        let m = self.fresh(side, seed)?;
        let max_length = side
            .train
            .max_length
            .unwrap_or_else(|| m.arch().max_positions().min(512));
        let ds = classify_dataset(&m, data, "input", &labels, max_length)?;
        let mut cfg = side.train.config(seed);
        if let Some(a) = aux {
            cfg.aux_coef = a.aux_coef;
            cfg.aux_warmup_frac = a.warmup_frac;
            cfg.aux_schedule = a.schedule;
        }
        let named = Named {
            inner: hooks.progress,
            name: format!("{}: {arm}, seed {seed}", self.name),
        };
        let step = |r: &StepReport| -> Result<()> {
            match hooks.on_step {
                Some(f) => f(arm, seed, r),
                None => Ok(()),
            }
        };
        let metrics = train::train(
            "experiment",
            &m,
            &ds,
            None,
            &cfg,
            Hooks {
                progress: &named,
                interrupt: hooks.interrupt,
                on_step: Some(&step),
            },
        )?;
        let curve = metrics
            .select(["step", "loss"])
            .map_err(Error::polars(OP, "reading the training curve"))?;
        Ok((m, curve))
    }

    /// `id, input, pred, p0 …` of `m` on the items of `df`.
    fn predict(&self, m: &Model, df: &DataFrame) -> Result<DataFrame> {
        let texts = column_strings(OP, df, "input")?;
        let p = m.predict_frame(&texts, 64)?;
        let mut out = select(df, &["id", "input"])?;
        out.hstack_mut(p.columns())
            .map_err(Error::polars(OP, "joining predictions"))?;
        Ok(out)
    }

    /// `id, correct` (0/1) of `m` on the test items.
    fn score(&self, m: &Model, test: &DataFrame) -> Result<DataFrame> {
        let p = self.predict(m, test)?;
        let pred = column_floats(OP, &p, "pred")?;
        let truth = column_floats(OP, test, "label")?;
        let correct: Vec<f64> = pred
            .iter()
            .zip(&truth)
            .map(|(a, b)| f64::from(u8::from(a == b)))
            .collect();
        DataFrame::new_infer_height(vec![
            test.column("id")
                .map_err(Error::polars(OP, "reading ids"))?
                .clone(),
            Column::new("correct".into(), correct),
        ])
        .map_err(Error::polars(OP, "scoring"))
    }

    /// B's training frame for a supervision: `id, input` and `label` or `p0 …`, every item
    /// of B exactly once.
    fn supervised_frame(
        &self,
        arm: &str,
        b: &DataFrame,
        s: &Supervision,
    ) -> Result<(DataFrame, Labels)> {
        let bad = |expected: String, got: String| Error::InvalidArgument {
            op: "experiment.supervise",
            arg: "supervision",
            expected: format!("arm '{arm}' to return {expected}"),
            got,
        };
        let probs: Vec<String> = (0..self.classes).map(|k| format!("p{k}")).collect();
        let (given, cols, labels) = match &s.target {
            Target::Labels(df) => (
                df,
                vec!["id".to_string(), "label".to_string()],
                Labels::Column("label".into()),
            ),
            Target::Probs(df) => {
                let mut c = vec!["id".to_string()];
                c.extend(probs.iter().cloned());
                (df, c, Labels::Probs(probs.clone()))
            }
        };
        let names: Vec<String> = given
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(missing) = cols.iter().find(|c| !names.contains(c)) {
            return Err(bad(
                format!("a DataFrame with columns {}", cols.join(", ")),
                format!("no '{missing}' among {}", names.join(", ")),
            ));
        }
        let given = given
            .select(cols.iter().map(String::as_str))
            .and_then(|g| {
                g.lazy()
                    .with_column(col("id").cast(DataType::String))
                    .collect()
            })
            .map_err(Error::polars(
                "experiment.supervise",
                "reading the supervision",
            ))?;
        let ids = column_strings(OP, &given, "id")?;
        let b_ids = column_strings(OP, b, "id")?;
        let wanted: std::collections::HashSet<&str> = b_ids.iter().map(String::as_str).collect();
        let mut seen = std::collections::HashSet::new();
        for id in &ids {
            if !wanted.contains(id.as_str()) {
                return Err(bad(
                    "ids of B only".into(),
                    format!("'{id}', which is not in B"),
                ));
            }
            if !seen.insert(id.as_str()) {
                return Err(bad("each id of B once".into(), format!("'{id}' twice")));
            }
        }
        if seen.len() != wanted.len() {
            return Err(bad(
                format!("all {} items of B", wanted.len()),
                format!("{} of them", seen.len()),
            ));
        }
        let data = select(b, &["id", "input"])?
            .join(&given, ["id"], ["id"], JoinArgs::new(JoinType::Inner), None)
            .map_err(Error::polars(OP, "joining the supervision to B"))?;
        Ok((data, labels))
    }

    /// The supervision's agreement with B's truth: the share of items whose label (or most
    /// probable class) is right.
    fn label_accuracy(&self, data: &DataFrame, labels: &Labels, b: &DataFrame) -> Result<f64> {
        let truth: HashMap<String, f64> = column_strings(OP, b, "id")?
            .into_iter()
            .zip(column_floats(OP, b, "label")?)
            .collect();
        let ids = column_strings(OP, data, "id")?;
        let given: Vec<f64> = match labels {
            Labels::Column(c) => column_floats(OP, data, c)?,
            Labels::Probs(cols) => {
                let p: Vec<Vec<f64>> = cols
                    .iter()
                    .map(|c| column_floats(OP, data, c))
                    .collect::<Result<_>>()?;
                (0..ids.len())
                    .map(|i| {
                        crate::model::argmax(&p.iter().map(|c| c[i]).collect::<Vec<_>>()) as f64
                    })
                    .collect()
            }
        };
        let right = ids
            .iter()
            .zip(&given)
            .filter(|(id, l)| truth.get(id.as_str()) == Some(l))
            .count();
        Ok(right as f64 / ids.len().max(1) as f64)
    }

    /// Runs every arm for every seed; returns `arm, seed, split, metric, value`.
    pub fn run(&mut self, hooks: RunHooks) -> Result<DataFrame> {
        let result = self.run_all(hooks);
        // Every model is built by now; a later run builds the tokenizer again.
        self.remove_tokenizer();
        result
    }

    fn run_all(&mut self, hooks: RunHooks) -> Result<DataFrame> {
        self.tokenizer()?;
        let units = self.units();
        let mut shards = Vec::with_capacity(units.len());
        for &seed in &self.spec.seeds {
            let of_seed: Vec<&str> = units
                .iter()
                .filter(|u| u.seed == seed)
                .map(|u| u.arm.as_str())
                .collect();
            shards.extend(self.run_seed(seed, &of_seed, hooks)?);
        }
        self.assemble(shards)
    }

    /// The independent runs of this experiment, in the order their results are reported: for
    /// each seed the weak model, the ceiling, then every other arm. A sweep runs each as its
    /// own task ([`Experiment::run_unit`]); a unit of an arm trains its seed's weak model again
    /// (its predictions are the arms' input), which is deterministic, so the numbers are those
    /// of [`Experiment::run`].
    pub fn units(&self) -> Vec<Unit> {
        let mut out = Vec::new();
        for &seed in &self.spec.seeds {
            for arm in ["weak", "ceiling"] {
                out.push(Unit {
                    seed,
                    arm: arm.to_string(),
                });
            }
            for (arm, kind) in self.spec.arms.iter().zip(&self.kinds) {
                if !matches!(kind, ArmKind::Weak | ArmKind::Ceiling) {
                    out.push(Unit {
                        seed,
                        arm: arm.clone(),
                    });
                }
            }
        }
        out
    }

    /// Runs one unit (one arm of one seed) and returns its shard of the results.
    pub fn run_unit(&mut self, unit: &Unit, hooks: RunHooks) -> Result<Shard> {
        if !self.units().contains(unit) {
            return Err(Error::invalid(
                "experiment.run_unit",
                "unit",
                "an arm and a seed of this experiment",
                format!("arm '{}', seed {}", unit.arm, unit.seed),
            ));
        }
        let out = self
            .tokenizer()
            .and_then(|_| self.run_seed(unit.seed, &[unit.arm.as_str()], hooks));
        self.remove_tokenizer();
        Ok(out?.pop().expect("one shard per unit"))
    }

    /// Runs `units` (arm names, in [`Experiment::units`] order) of one seed: its split, its
    /// weak model when any of them needs it, and each unit's model.
    fn run_seed(&self, seed: u64, units: &[&str], hooks: RunHooks) -> Result<Vec<Shard>> {
        let split = self.split(seed)?;
        let classes = self.classes;
        let shard = |arm: &str,
                     correct: DataFrame,
                     curve: DataFrame,
                     quality: &[(&str, f64)]|
         -> Result<Shard> {
            let acc = column_floats(OP, &correct, "correct")?.iter().sum::<f64>()
                / correct.height() as f64;
            let mut rows = Rows::default();
            rows.push(arm, seed, "test", "accuracy", acc);
            for (metric, value) in quality {
                rows.push(arm, seed, "train_b", metric, *value);
            }
            if let Some(f) = hooks.on_arm_done {
                f(arm, seed, acc)?;
            }
            Ok(Shard {
                unit: Unit {
                    seed,
                    arm: arm.to_string(),
                },
                results: rows.frame()?,
                items: with_arm_seed(correct, arm, seed)?,
                curves: with_arm_seed(curve, arm, seed)?,
                service_curves: Vec::new(),
            })
        };
        // The weak supervisor (trained on A's truth): one reference of PGR, and its
        // predictions on B are every arm's input.
        let mut weak_shard = None;
        let weak_predictions = if units.iter().any(|u| *u != "ceiling") {
            let (weak, curve) = self.train_model(
                &self.spec.weak,
                &split.a,
                Labels::Column("label".into()),
                None,
                "weak",
                seed,
                hooks,
            )?;
            if units.contains(&"weak") {
                weak_shard = Some(shard("weak", self.score(&weak, &split.test)?, curve, &[])?);
            }
            self.predict(&weak, &split.b)?
        } else {
            DataFrame::empty()
        };
        let mut b_cols = vec!["id", "input"];
        if split.b.column("choices").is_ok() {
            b_cols.push("choices");
        }
        let b_inputs = select(&split.b, &b_cols)?;
        let services = SeedServices {
            exp: self,
            seed,
            b_truth: &split.b,
            weak_predictions: &weak_predictions,
            hooks,
            novices: Once::new(),
            assistant: Once::new(),
            curves: Default::default(),
        };
        let ctx = Context {
            seed,
            classes,
            a: &split.a,
            b: &b_inputs,
            weak_predictions: &weak_predictions,
            services: &services,
            assistance: &self.spec.assistance,
            aux: &self.spec.aux,
        };
        let mut shards = Vec::with_capacity(units.len());
        for &arm in units {
            if arm == "weak" {
                shards.push(weak_shard.take().expect("trained above"));
                continue;
            }
            if arm == "ceiling" {
                // B's truth: the other reference of PGR.
                let (ceiling, curve) = self.train_model(
                    &self.spec.strong,
                    &split.b,
                    Labels::Column("label".into()),
                    None,
                    "ceiling",
                    seed,
                    hooks,
                )?;
                shards.push(shard(
                    "ceiling",
                    self.score(&ceiling, &split.test)?,
                    curve,
                    &[],
                )?);
                continue;
            }
            let kind = self
                .spec
                .arms
                .iter()
                .position(|a| a == arm)
                .map(|i| &self.kinds[i])
                .expect("units come from the spec");
            let builtin: Box<dyn Supervisor>;
            let supervisor: &dyn Supervisor = match kind {
                ArmKind::Weak | ArmKind::Ceiling => unreachable!("references are handled above"),
                ArmKind::NaiveW2s => {
                    builtin = Box::new(WeakLabels { aux: false });
                    builtin.as_ref()
                }
                ArmKind::AuxW2s => {
                    builtin = Box::new(WeakLabels { aux: true });
                    builtin.as_ref()
                }
                ArmKind::Crowd(method) => {
                    builtin = Box::new(CrowdArm {
                        method: method.clone(),
                    });
                    builtin.as_ref()
                }
                ArmKind::UnassistedNovices | ArmKind::AssistedNovices => {
                    builtin = Box::new(NoviceArm {
                        assisted: *kind == ArmKind::AssistedNovices,
                    });
                    builtin.as_ref()
                }
                ArmKind::Custom => self.custom.get(arm).expect("checked in new").as_ref(),
            };
            let s = supervisor.supervise(&ctx)?;
            let (data, labels) = self.supervised_frame(arm, &b_inputs, &s)?;
            let label_accuracy = self.label_accuracy(&data, &labels, &split.b)?;
            let (m, curve) = self.train_model(
                &self.spec.strong,
                &data,
                labels,
                s.aux.as_ref(),
                arm,
                seed,
                hooks,
            )?;
            let mut quality = vec![("label_accuracy", label_accuracy)];
            quality.extend(s.quality.iter().map(|(m, v)| (*m, *v)));
            shards.push(shard(arm, self.score(&m, &split.test)?, curve, &quality)?);
        }
        // Models the services trained (the assistant's folds) belong to the seed; the last
        // unit carries them and `assemble` keeps one copy per seed.
        if let Some(last) = shards.last_mut() {
            last.service_curves = services.curves.into_inner();
        }
        Ok(shards)
    }

    /// Puts shards (of every unit, in any order) together as [`Experiment::run`] reports them:
    /// per seed, every unit's test accuracy, then the arms' supervision quality on B; items and
    /// curves in unit order, the seed's service curves (one copy) after its units'.
    pub fn assemble(&mut self, shards: Vec<Shard>) -> Result<DataFrame> {
        let units = self.units();
        let mut by_unit: HashMap<Unit, Shard> = HashMap::new();
        for s in shards {
            if !units.contains(&s.unit) {
                return Err(Error::invalid(
                    "experiment.assemble",
                    "shards",
                    "shards of this experiment's units",
                    format!("arm '{}', seed {}", s.unit.arm, s.unit.seed),
                ));
            }
            by_unit.insert(s.unit.clone(), s);
        }
        if let Some(missing) = units.iter().find(|u| !by_unit.contains_key(u)) {
            return Err(Error::invalid(
                "experiment.assemble",
                "shards",
                format!("a shard of each of the {} units", units.len()),
                format!("none for arm '{}', seed {}", missing.arm, missing.seed),
            ));
        }
        let mut rows = Rows::default();
        let (mut items, mut curves) = (Vec::new(), Vec::new());
        for &seed in &self.spec.seeds {
            let of_seed: Vec<&Shard> = units
                .iter()
                .filter(|u| u.seed == seed)
                .map(|u| &by_unit[u])
                .collect();
            for split in ["test", "train_b"] {
                for s in &of_seed {
                    rows.extend_split(&s.results, split, s.unit.seed)?;
                }
            }
            for s in &of_seed {
                items.push(s.items.clone());
                curves.push(s.curves.clone());
            }
            let mut seen = std::collections::HashSet::new();
            for s in &of_seed {
                for c in &s.service_curves {
                    let arms = column_strings(OP, c, "arm")?;
                    if arms.iter().any(|a| seen.insert(a.clone())) {
                        curves.push(c.clone());
                    }
                }
            }
        }
        let results = rows.frame()?;
        self.results = Some(results.clone());
        self.items = stack(items)?;
        self.curves = stack(curves)?;
        Ok(results)
    }

    fn results(&self, op: &'static str) -> Result<&DataFrame> {
        self.results.as_ref().ok_or_else(|| {
            Error::invalid(
                op,
                "experiment",
                "an experiment that has run (exp:run())",
                "not run yet",
            )
        })
    }

    /// Per-seed values of `metric` on `split` for `arm`, in seed order.
    fn per_seed(&self, op: &'static str, arm: &str, split: &str, metric: &str) -> Result<Vec<f64>> {
        let r = self.results(op)?;
        let arms = column_strings(op, r, "arm")?;
        let splits = column_strings(op, r, "split")?;
        let metrics = column_strings(op, r, "metric")?;
        let seeds = column_floats(op, r, "seed")?;
        let values = column_floats(op, r, "value")?;
        let by_seed: HashMap<i64, f64> = (0..arms.len())
            .filter(|&i| arms[i] == arm && splits[i] == split && metrics[i] == metric)
            .map(|i| (seeds[i] as i64, values[i]))
            .collect();
        Ok(self
            .spec
            .seeds
            .iter()
            .filter_map(|s| by_seed.get(&(*s as i64)).copied())
            .collect())
    }

    fn test_accuracy(&self, op: &'static str, arm: &str) -> Result<Vec<f64>> {
        if !self.spec.arms.iter().any(|a| a == arm) && arm != "weak" && arm != "ceiling" {
            return Err(Error::invalid(
                op,
                "arm",
                format!("one of the arms: {}", self.spec.arms.join(", ")),
                format!("'{arm}'"),
            ));
        }
        self.per_seed(op, arm, "test", "accuracy")
    }

    /// Test accuracy per arm in the spec's order (weak and ceiling first when not listed):
    /// `arm, accuracy, sd, seeds, note` (the note says how `aux_w2s` ran).
    pub fn accuracy(&self) -> Result<DataFrame> {
        const F: &str = "experiment.accuracy";
        let mut arm = Vec::new();
        let (mut mean, mut sd, mut n, mut note) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for a in self.all_arms() {
            let v = self.test_accuracy(F, &a)?;
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let s = if v.len() > 1 {
                (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
            } else {
                f64::NAN
            };
            note.push(if a == "aux_w2s" {
                let x = &self.spec.aux;
                format!(
                    "aux_coef {} ({} schedule, warmup_frac {})",
                    x.aux_coef,
                    x.schedule.name(),
                    x.warmup_frac
                )
            } else {
                String::new()
            });
            arm.push(a);
            mean.push(m);
            sd.push(s);
            n.push(v.len() as i64);
        }
        df!("arm" => arm, "accuracy" => mean, "sd" => sd, "seeds" => n, "note" => note)
            .map_err(Error::polars(F, "building the table"))
    }

    /// Every arm with results: weak and ceiling first unless the spec places them, then the
    /// spec's order.
    pub fn all_arms(&self) -> Vec<String> {
        let mut out: Vec<String> = ["weak", "ceiling"]
            .iter()
            .filter(|a| !self.spec.arms.iter().any(|x| x == *a))
            .map(|a| a.to_string())
            .collect();
        out.extend(self.spec.arms.iter().cloned());
        out
    }

    /// PGR of every arm (but the references) against `baseline` (default `weak`) and the
    /// ceiling: the ratio of the mean gains over seeds, `mean(arm − baseline) / mean(ceiling −
    /// baseline)`, with Fieller's interval at the spec's level over the per-seed values.
    /// Columns `arm, pgr, lower, upper, seeds, inverted_seeds, note`: `inverted_seeds` counts
    /// seeds where the ceiling is not above the baseline (kept, not dropped as the reference's
    /// plots do); `note` says when there is no finite interval.
    pub fn pgr(&self, baseline: Option<&str>) -> Result<DataFrame> {
        const F: &str = "experiment.pgr";
        let baseline = baseline.unwrap_or("weak");
        // The arm names are checked here so that the error lists the spec's arms.
        self.test_accuracy(F, baseline)?;
        let arms: Vec<String> = self
            .spec
            .arms
            .iter()
            .filter(|a| *a != baseline && *a != "weak" && *a != "ceiling")
            .cloned()
            .collect();
        pgr_table(
            self.results(F)?,
            &PgrOptions {
                metric: "accuracy".into(),
                baseline: baseline.into(),
                ceiling: "ceiling".into(),
                split: Some("test".into()),
                arms: Some(arms),
                level: self.spec.level,
            },
        )
    }

    /// The paired difference `a − b` across seeds (each seed scores both on the same test
    /// items): of test accuracy, and of PGR (the difference's share of the ceiling − weak
    /// gap), each with its interval. Columns `metric, estimate, lower, upper, seeds, note`.
    pub fn compare(&self, a: &str, b: &str) -> Result<DataFrame> {
        const F: &str = "experiment.compare";
        let (va, vb) = (self.test_accuracy(F, a)?, self.test_accuracy(F, b)?);
        let diff: Vec<f64> = va.iter().zip(&vb).map(|(x, y)| x - y).collect();
        let weak = self.test_accuracy(F, "weak")?;
        let gap: Vec<f64> = self
            .test_accuracy(F, "ceiling")?
            .iter()
            .zip(&weak)
            .map(|(c, w)| c - w)
            .collect();
        let acc = mean_interval(&diff, self.spec.level)?;
        let pgr = ratio_interval(&diff, &gap, self.spec.level)?;
        let mut metric = Vec::new();
        let (mut est, mut lo, mut hi, mut n, mut note) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (m, r) in [("accuracy", acc), ("pgr", pgr)] {
            metric.push(format!("{m}: {a} − {b}"));
            est.push(r.estimate);
            lo.push(r.lower);
            hi.push(r.upper);
            n.push(r.n as i64);
            note.push(r.bounds.note().to_string());
        }
        df!("metric" => metric, "estimate" => est, "lower" => lo, "upper" => hi, "seeds" => n, "note" => note)
            .map_err(Error::polars(F, "building the table"))
    }

    /// The quality of each arm's supervision on B, mean over seeds: `arm, metric, mean`, arms
    /// in the spec's order.
    pub fn supervision(&self) -> Result<DataFrame> {
        const F: &str = "experiment.supervision";
        self.results(F)?;
        let (mut arm, mut metric, mut mean) = (Vec::new(), Vec::new(), Vec::new());
        for a in &self.spec.arms {
            for m in ["label_accuracy", "overseer_alpha"] {
                let v = self.per_seed(F, a, "train_b", m)?;
                if v.is_empty() {
                    continue;
                }
                arm.push(a.clone());
                metric.push(m);
                mean.push(v.iter().sum::<f64>() / v.len() as f64);
            }
        }
        df!("arm" => arm, "metric" => metric, "mean" => mean)
            .map_err(Error::polars(F, "building the table"))
    }
}
