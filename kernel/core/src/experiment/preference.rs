//! The sandwich of preferences on the experiment engine: every arm judges the same pairs of the
//! built-in review task (`overopt::task`) with a different overseer, a reward model is trained
//! on each arm's verdicts, a policy is optimised against it (best-of-n, and GRPO or RLOO when
//! `rl` is set), and the hidden gold reward (the expert) scores the result. PGR puts each arm
//! between `weak` (0: the verdicts of a weak reward model trained on the gold verdicts of a few
//! pairs) and `ceiling` (1: the gold verdicts), with [`pgr_table`]'s intervals over seeds.
//!
//! The results frame has the classification experiment's shape (`arm, seed, split, metric,
//! value`): `label_accuracy` (split `pairs`: agreement of the arm's verdicts with the gold
//! ones), `bon_gold` and `rl_gold` (split `policy`). Seeds offset as
//! `workbooks/preference_sandwich.lua` does, so the two give the same pairs and judges.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::arms::adoption;
use super::seeds::{pgr_table, PgrOptions};
use super::spec::{Assistance, ModelSpec, Overseers, Side};
use crate::feedback::{Campaign, CampaignSpec, Kind as CampaignKind};
use crate::model::{GenerateOptions, LoadOptions, Model};
use crate::overopt::best_of_n_sweep;
use crate::overopt::task;
use crate::oversight::{self, Comparisons, SimulateOptions};
use crate::train::{self, train_group, GroupConfig, GroupLoss, Hooks, PairColumns, RewardFn};
use crate::{column_floats, column_strings, Error, Result, Rng, Silent};

const OP: &str = "experiment.preference";

/// What raters read above each pair: the gold reward's criteria, in words.
const INSTRUCTIONS: &str = "# Which review is better?\nTwo short film reviews (the prompt is the left one's). \
The better review praises in **varied** words (a word said twice counts once), names **fewer flaws**, \
avoids the empty superlative *masterpiece*, and stays **short** (about 12 words at most). \
Press **1** for left or **2** for right, then Enter.";

fn d_pairs() -> usize {
    1500
}
fn d_corpus() -> usize {
    3000
}
fn d_one() -> u64 {
    1
}
fn d_weak_pairs() -> usize {
    100
}
fn d_seeds() -> Vec<u64> {
    vec![1]
}
fn d_level() -> f64 {
    0.95
}
fn d_n() -> usize {
    16
}
fn d_pool() -> usize {
    64
}
fn d_repeats() -> usize {
    4
}
fn d_new_tokens() -> usize {
    64
}
fn d_batch() -> usize {
    64
}

/// A preference-sandwich experiment.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PreferenceSpec {
    #[serde(default)]
    pub task: PairTask,
    /// The policy: built (or loaded) once, fine-tuned on the task's corpus with `train`, and
    /// the starting point of every arm's optimisation.
    pub policy: Side,
    /// Every arm's reward model (a scalar head), trained on that arm's verdicts; the weak
    /// reward model has the same architecture and training.
    pub reward_model: Side,
    /// How many pairs' gold verdicts the weak reward model learns from.
    #[serde(default = "d_weak_pairs")]
    pub weak_pairs: usize,
    /// The simulated novices of the crowd and assisted arms (`sw.overseers.simulate_pairwise`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overseers: Option<Overseers>,
    pub arms: Vec<String>,
    #[serde(default = "d_seeds")]
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub best_of_n: BestOfN,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rl: Option<RlSpec>,
    #[serde(default)]
    pub assistance: Assistance,
    /// A `sandwich serve` pairwise campaign (made by [`PreferenceExperiment::write_campaign`])
    /// whose raters' judgments are the arm `raters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raters: Option<String>,
    #[serde(default = "d_level")]
    pub level: f64,
}

/// The built-in review task's sizes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PairTask {
    /// Pairs judged per seed.
    #[serde(default = "d_pairs")]
    pub pairs: usize,
    /// Distinct reviews the pairs are drawn from (default: half the pairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviews: Option<usize>,
    /// Reviews of the corpus the policy is fine-tuned on.
    #[serde(default = "d_corpus")]
    pub corpus: usize,
    /// Seed of the corpus.
    #[serde(default = "d_one")]
    pub seed: u64,
}

impl Default for PairTask {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

/// Best-of-n against each arm's reward model: `repeats` pools of `pool` samples per prompt,
/// scored at `n` with Gao et al.'s unbiased estimator.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BestOfN {
    #[serde(default = "d_n")]
    pub n: usize,
    #[serde(default = "d_pool")]
    pub pool: usize,
    #[serde(default = "d_repeats")]
    pub repeats: usize,
    #[serde(default = "d_new_tokens")]
    pub max_new_tokens: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
}

impl Default for BestOfN {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

fn d_method() -> String {
    "grpo".into()
}
fn d_tail() -> usize {
    10
}

/// An RL run against each arm's reward model (`sw.train.grpo`/`rloo` options; every prompt of
/// the corpus in every step). `rl_gold` is the gold reward of the last `tail` steps' samples.
// No `deny_unknown_fields` here (serde cannot combine it with `flatten`): every other key lands
// in `options`, which `GroupConfig` (which does deny unknown keys) reads in `check`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RlSpec {
    #[serde(default = "d_method")]
    pub method: String,
    #[serde(default = "d_tail")]
    pub tail: usize,
    /// The trainer's options (as `sw.train.grpo` takes them, without prompts, rewards, seed).
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// What a preference arm's name means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PrefArm {
    Weak,
    Ceiling,
    CrowdBt,
    CrowdNoisyBt,
    Assisted,
    Raters,
}

fn arm_kind(name: &str) -> Option<PrefArm> {
    Some(match name {
        "weak" => PrefArm::Weak,
        "ceiling" => PrefArm::Ceiling,
        "crowd_bradley_terry" => PrefArm::CrowdBt,
        "crowd_noisy_bradley_terry" => PrefArm::CrowdNoisyBt,
        "assisted_novices" => PrefArm::Assisted,
        "raters" => PrefArm::Raters,
        _ => return None,
    })
}

/// The arm names a preference experiment knows.
pub const PREFERENCE_ARMS: &[&str] = &[
    "weak",
    "ceiling",
    "crowd_bradley_terry",
    "crowd_noisy_bradley_terry",
    "assisted_novices",
    "raters",
];

impl PreferenceSpec {
    /// What types cannot say, before any compute.
    pub fn check(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for a in &self.arms {
            if arm_kind(a).is_none() {
                return Err(Error::invalid(
                    OP,
                    "arms",
                    format!("arm names among {}", PREFERENCE_ARMS.join(", ")),
                    format!("'{a}'"),
                ));
            }
            if !seen.insert(a) {
                return Err(Error::invalid(
                    OP,
                    "arms",
                    "each arm once",
                    format!("'{a}' twice"),
                ));
            }
        }
        for needed in ["weak", "ceiling"] {
            if !self.arms.iter().any(|a| a == needed) {
                return Err(Error::invalid(
                    OP,
                    "arms",
                    "'weak' and 'ceiling' among the arms (PGR's 0 and 1)",
                    format!("no '{needed}'"),
                ));
            }
        }
        let crowd = self.arms.iter().any(|a| {
            matches!(
                arm_kind(a),
                Some(PrefArm::CrowdBt | PrefArm::CrowdNoisyBt | PrefArm::Assisted)
            )
        });
        if crowd && self.overseers.is_none() {
            return Err(Error::invalid(
                OP,
                "overseers",
                "novices ({novices = {overseers = ..., k = ...}}) for the crowd and assisted arms",
                "none",
            ));
        }
        let raters_arm = self.arms.iter().any(|a| a == "raters");
        match (&self.raters, raters_arm) {
            (None, true) => {
                return Err(Error::invalid(
                    OP,
                    "raters",
                    "a campaign file for the arm 'raters'",
                    "none",
                ))
            }
            (Some(_), false) => {
                return Err(Error::invalid(
                    OP,
                    "arms",
                    "the arm 'raters' when a campaign is given",
                    "no 'raters'",
                ))
            }
            (Some(path), true) => {
                let c = Campaign::open(path)?;
                if c.spec().kind != CampaignKind::Pairwise {
                    return Err(Error::invalid(OP, "raters", "a pairwise campaign", path));
                }
            }
            (None, false) => {}
        }
        if self.seeds.is_empty() {
            return Err(Error::invalid(OP, "seeds", "at least one seed", "none"));
        }
        let t = &self.task;
        crate::validate::positive_count(OP, "task.pairs", t.pairs)?;
        crate::validate::positive_count(OP, "task.corpus", t.corpus)?;
        if let Some(m) = t.reviews {
            if m < 2 {
                return Err(Error::invalid(OP, "task.reviews", "at least 2 reviews", m));
            }
        }
        if !(2..=t.pairs).contains(&self.weak_pairs) {
            return Err(Error::invalid(
                OP,
                "weak_pairs",
                format!("between 2 and task.pairs ({})", t.pairs),
                self.weak_pairs,
            ));
        }
        let b = &self.best_of_n;
        for (k, v) in [
            ("best_of_n.n", b.n),
            ("best_of_n.repeats", b.repeats),
            ("best_of_n.max_new_tokens", b.max_new_tokens),
            ("best_of_n.batch_size", b.batch_size),
        ] {
            crate::validate::positive_count(OP, k, v)?;
        }
        // best_of_n_sweep's own bound, checked here so that it fails before the fine-tuning.
        const MAX_POOL: usize = 1 << 20;
        if b.pool > MAX_POOL {
            return Err(Error::invalid(
                OP,
                "best_of_n.pool",
                format!("at most {MAX_POOL} samples per prompt"),
                b.pool,
            ));
        }
        if b.pool < b.n {
            return Err(Error::invalid(
                OP,
                "best_of_n.pool",
                format!("at least best_of_n.n ({})", b.n),
                b.pool,
            ));
        }
        if let Some(rl) = &self.rl {
            if !["grpo", "rloo"].contains(&rl.method.as_str()) {
                return Err(Error::invalid(
                    OP,
                    "rl.method",
                    "'grpo' or 'rloo'",
                    format!("'{}'", rl.method),
                ));
            }
            crate::validate::positive_count(OP, "rl.tail", rl.tail)?;
            for own in ["prompts", "reward", "seed", "prompts_per_step"] {
                if rl.options.contains_key(own) {
                    return Err(Error::invalid(
                        OP,
                        "rl",
                        "options without prompts, reward, seed or prompts_per_step (the experiment sets them)",
                        format!("'{own}'"),
                    ));
                }
            }
            self.group_config(rl, 1, 1)?;
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::invalid(
                OP,
                "level",
                "a number in (0, 1)",
                self.level,
            ));
        }
        Ok(())
    }

    fn group_config(&self, rl: &RlSpec, prompts: usize, seed: u64) -> Result<GroupConfig> {
        let mut o = rl.options.clone();
        o.insert("prompts_per_step".into(), prompts.into());
        o.insert("seed".into(), seed.into());
        let cfg: GroupConfig = serde_json::from_value(serde_json::Value::Object(o))
            .map_err(|e| Error::invalid(OP, "rl", "sw.train.grpo options", e.to_string()))?;
        Ok(cfg)
    }
}

/// A preference-sandwich experiment and, once run, its results.
pub struct PreferenceExperiment {
    pub name: String,
    pub spec: PreferenceSpec,
    /// `arm, seed, split, metric, value` (after `run`).
    pub results: Option<DataFrame>,
    /// `arm, seed, step, reward, gold, kl` of every RL run (after `run`, when `rl` is set).
    pub curves: Option<DataFrame>,
    dir: PathBuf,
}

impl Drop for PreferenceExperiment {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn hooks() -> Hooks<'static> {
    Hooks {
        progress: &Silent,
        interrupt: None,
        on_step: None,
    }
}

fn gold_fn() -> RewardFn<'static> {
    RewardFn {
        name: "gold".into(),
        weight: 0.0,
        f: Box::new(|_, c| Ok(task::gold_rewards(c))),
    }
}

/// `prompt, chosen, rejected` from one verdict per pair (`true`: left preferred).
fn prefs(p: &[String], l: &[String], r: &[String], left: &[bool]) -> Result<DataFrame> {
    let pick = |a: bool| -> Vec<String> {
        left.iter()
            .enumerate()
            .map(|(i, &lw)| if lw == a { l[i].clone() } else { r[i].clone() })
            .collect()
    };
    DataFrame::new_infer_height(vec![
        Column::new("prompt".into(), &p[..left.len()]),
        Column::new("chosen".into(), pick(true)),
        Column::new("rejected".into(), pick(false)),
    ])
    .map_err(Error::polars(OP, "building preference rows"))
}

/// Verdicts from per-text scores: left wins when its score is at least the right one's.
fn by_scores(scores: &DataFrame, l: &[String], r: &[String]) -> Result<Vec<bool>> {
    let labels = column_strings(OP, scores, "label")?;
    let values = column_floats(OP, scores, "score")?;
    let s: HashMap<&str, f64> = labels.iter().map(String::as_str).zip(values).collect();
    let get = |t: &str| s.get(t).copied().unwrap_or(0.0);
    Ok(l.iter().zip(r).map(|(a, b)| get(a) >= get(b)).collect())
}

impl PreferenceExperiment {
    pub fn new(name: &str, spec: PreferenceSpec) -> Result<Self> {
        spec.check()?;
        // One directory per experiment in this process (tests run several at once), as the
        // classification runner names its tokenizer directory.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sandwich-preference-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        Ok(PreferenceExperiment {
            name: name.to_string(),
            spec,
            results: None,
            curves: None,
            dir,
        })
    }

    fn model(&self, side: &Side, head: &str, seed: u64) -> Result<Model> {
        match &side.model {
            ModelSpec::New(o) => {
                let mut o = o.clone();
                o.tokenizer = Some(self.dir.join("tokenizer").display().to_string());
                o.head = Some(head.into());
                o.seed = seed;
                Model::new_from(&o)
            }
            ModelSpec::Load { path, options } => {
                let mut o = options.clone();
                o.head = Some(head.into());
                o.seed = seed;
                Model::load_with(Path::new(path), &o)
            }
        }
    }

    fn train_rm(&self, frame: &DataFrame, init_seed: u64, seed: u64) -> Result<Model> {
        let side = &self.spec.reward_model;
        let rm = self.model(side, "scalar", init_seed)?;
        let max_length = side
            .train
            .max_length
            .unwrap_or_else(|| rm.arch().max_positions().min(512));
        let cols: PairColumns = serde_json::from_str("{}").expect("defaults");
        let cfg = side.train.config(seed);
        train::train_reward(&rm, frame, None, &cols, max_length, &cfg, hooks())?;
        Ok(rm)
    }

    /// Runs every seed and arm (the policy is fine-tuned once, first).
    pub fn run(&mut self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(Error::io(OP, self.dir.clone()))?;
        task::write_tokenizer(&self.dir.join("tokenizer"))?;
        let spec = self.spec.clone();
        // The policy every arm starts from, saved so that each RL run starts from a copy.
        let corpus = task::corpus(spec.task.corpus, spec.task.seed)?;
        let base = self.model(&spec.policy, "lm", spec.task.seed)?;
        let max_length = spec
            .policy
            .train
            .max_length
            .unwrap_or_else(|| base.arch().max_positions().min(512));
        let ds = train::sft_dataset(&base, &corpus, "prompt", "completion", max_length, false)?;
        train::train(
            "experiment.preference (policy)",
            &base,
            &ds,
            None,
            &spec.policy.train.config(spec.task.seed),
            hooks(),
        )?;
        let policy_dir = self.dir.join("policy");
        base.save(&policy_dir)?;
        let mut prompts = column_strings(OP, &corpus, "prompt")?;
        prompts.sort();
        prompts.dedup();
        let bon_prompts: Vec<String> = (0..spec.best_of_n.repeats)
            .flat_map(|_| prompts.iter().cloned())
            .collect();

        let (mut arm_c, mut seed_c, mut split_c, mut metric_c, mut value_c) =
            (vec![], vec![], vec![], vec![], vec![]);
        let mut push = |arm: &str, seed: u64, split: &str, metric: &str, value: f64| {
            arm_c.push(arm.to_string());
            seed_c.push(seed as i64);
            split_c.push(split.to_string());
            metric_c.push(metric.to_string());
            value_c.push(value);
        };
        let mut curves = Vec::new();
        for &seed in &spec.seeds {
            let pairs = seed_pairs(&spec, seed)?;
            let p = column_strings(OP, &pairs, "prompt")?;
            let l = column_strings(OP, &pairs, "left")?;
            let r = column_strings(OP, &pairs, "right")?;
            let w = column_strings(OP, &pairs, "winner")?;
            let n = l.len();
            let truth: Vec<bool> = w.iter().zip(&l).map(|(w, l)| w == l).collect();
            // The weak reward model: the gold verdicts of a few pairs, then its own on all.
            let weak_rm = self.train_rm(
                &prefs(&p, &l, &r, &truth[..spec.weak_pairs])?,
                10 + seed,
                seed,
            )?;
            // Scored as `m:score` scores (batches of 8) at the reward model's training length.
            let rm_len = spec
                .reward_model
                .train
                .max_length
                .unwrap_or_else(|| weak_rm.arch().max_positions().min(512));
            let sl = train::score(&weak_rm, &p, &l, rm_len, 8)?;
            let sr = train::score(&weak_rm, &p, &r, rm_len, 8)?;
            let weak: Vec<bool> = sl.iter().zip(&sr).map(|(a, b)| a >= b).collect();
            let judged = match &spec.overseers {
                Some(o) => Some(oversight::simulate_pairwise(
                    &pairs,
                    &SimulateOptions {
                        overseers: o.novices.overseers.clone(),
                        k: o.novices.k,
                        seed: 200 + seed,
                        confidence: false,
                        confidence_noise: 0.0,
                    },
                )?),
                None => None,
            };
            let judged_frame = || {
                judged
                    .as_ref()
                    .ok_or_else(|| Error::invalid(OP, "overseers", "novices for this arm", "none"))
            };
            for arm in &spec.arms {
                let verdicts: Vec<bool> = match arm_kind(arm).expect("checked") {
                    PrefArm::Weak => weak.clone(),
                    PrefArm::Ceiling => truth.clone(),
                    PrefArm::CrowdBt => {
                        let c = Comparisons::from_frame(OP, judged_frame()?)?;
                        let s = oversight::bradley_terry(&c, &Default::default())?;
                        by_scores(&s, &l, &r)?
                    }
                    PrefArm::CrowdNoisyBt => {
                        let o = oversight::NoisyBtOptions {
                            seed,
                            ..Default::default()
                        };
                        let s = oversight::noisy_bradley_terry(judged_frame()?, &o)?.scores;
                        by_scores(&s, &l, &r)?
                    }
                    PrefArm::Raters => {
                        let path = spec.raters.as_deref().expect("checked: raters is set");
                        raters_verdicts(path, seed, &l, &r)?
                    }
                    PrefArm::Assisted => {
                        let a =
                            assisted(judged_frame()?, &l, &r, &sl, &sr, &spec.assistance, seed)?;
                        let c = Comparisons::from_frame(OP, &a)?;
                        let s = oversight::bradley_terry(&c, &Default::default())?;
                        by_scores(&s, &l, &r)?
                    }
                };
                let right = verdicts.iter().zip(&truth).filter(|(a, b)| a == b).count();
                push(
                    arm,
                    seed,
                    "pairs",
                    "label_accuracy",
                    right as f64 / n as f64,
                );
                // The same initialisation for every arm of a seed: arms differ only in their
                // verdicts.
                let rm = self.train_rm(&prefs(&p, &l, &r, &verdicts)?, 1000 * seed, seed)?;
                let proxy = RewardFn::model("proxy", &rm);
                let gen = GenerateOptions {
                    max_new_tokens: spec.best_of_n.max_new_tokens,
                    batch_size: spec.best_of_n.batch_size,
                    seed,
                    ..GenerateOptions::default()
                };
                let b = &spec.best_of_n;
                let sweep = best_of_n_sweep(
                    &base,
                    &bon_prompts,
                    &proxy,
                    &gold_fn(),
                    &[b.n],
                    b.pool,
                    &gen,
                    hooks(),
                )?;
                push(
                    arm,
                    seed,
                    "policy",
                    "bon_gold",
                    column_floats(OP, &sweep, "gold")?[0],
                );
                if let Some(rl) = &spec.rl {
                    let policy = Model::load_with(&policy_dir, &LoadOptions::default())?;
                    let cfg = spec.group_config(rl, prompts.len(), seed)?;
                    let loss = if rl.method == "rloo" {
                        GroupLoss::Rloo
                    } else {
                        GroupLoss::Grpo
                    };
                    let m = train_group(
                        OP,
                        &policy,
                        None,
                        &prompts,
                        &[proxy, gold_fn()],
                        loss,
                        &cfg,
                        hooks(),
                    )?;
                    let g = column_floats(OP, &m, "rewards/gold")?;
                    let k = rl.tail.min(g.len()).max(1);
                    let tail = g[g.len() - k..].iter().sum::<f64>() / k as f64;
                    push(arm, seed, "policy", "rl_gold", tail);
                    let pick = |c: &str| column_floats(OP, &m, c);
                    curves.push(
                        DataFrame::new_infer_height(vec![
                            Column::new("arm".into(), vec![arm.clone(); g.len()]),
                            Column::new("seed".into(), vec![seed as i64; g.len()]),
                            Column::new("step".into(), (1..=g.len() as i64).collect::<Vec<_>>()),
                            Column::new("proxy".into(), pick("rewards/proxy")?),
                            Column::new("gold".into(), g),
                            Column::new("kl".into(), pick("kl")?),
                        ])
                        .map_err(Error::polars(OP, "building a curve"))?,
                    );
                }
            }
        }
        self.results = Some(
            DataFrame::new_infer_height(vec![
                Column::new("arm".into(), arm_c),
                Column::new("seed".into(), seed_c),
                Column::new("split".into(), split_c),
                Column::new("metric".into(), metric_c),
                Column::new("value".into(), value_c),
            ])
            .map_err(Error::polars(OP, "building the results"))?,
        );
        self.curves = match curves.len() {
            0 => None,
            _ => {
                let lazy: Vec<LazyFrame> = curves.into_iter().map(IntoLazy::lazy).collect();
                Some(
                    concat(lazy, UnionArgs::default())
                        .and_then(LazyFrame::collect)
                        .map_err(Error::polars(OP, "stacking the curves"))?,
                )
            }
        };
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }

    /// Creates a `sandwich serve` pairwise campaign of every seed's pairs for the arm `raters`:
    /// items `s<seed>-<n>` (prompt, left, right), every tenth with the gold verdict (shown at
    /// raters' gold turns to check them; a rater below half right after five is paused),
    /// `overlap` judgments per item, `raters` rater links, and instructions that state the
    /// expert's criteria. Returns how many items it has.
    pub fn write_campaign(&self, path: &str, raters: usize, overlap: usize) -> Result<usize> {
        crate::validate::positive_count(OP, "raters", raters)?;
        crate::validate::positive_count(OP, "overlap", overlap)?;
        let (mut id, mut prompt, mut left, mut right, mut gold) =
            (vec![], vec![], vec![], vec![], vec![]);
        for &seed in &self.spec.seeds {
            let pairs = seed_pairs(&self.spec, seed)?;
            let w = column_strings(OP, &pairs, "winner")?;
            for (i, ((p, l), r)) in column_strings(OP, &pairs, "prompt")?
                .into_iter()
                .zip(column_strings(OP, &pairs, "left")?)
                .zip(column_strings(OP, &pairs, "right")?)
                .enumerate()
            {
                id.push(item_id(seed, i));
                prompt.push(p);
                left.push(l);
                right.push(r);
                gold.push(((i + 1) % 10 == 0).then(|| w[i].clone()));
            }
        }
        let n = id.len();
        let items = DataFrame::new_infer_height(vec![
            Column::new("id".into(), id),
            Column::new("prompt".into(), prompt),
            Column::new("left".into(), left),
            Column::new("right".into(), right),
            Column::new("gold".into(), gold),
        ])
        .map_err(Error::polars(OP, "building the campaign's items"))?;
        let raters: Vec<serde_json::Value> = (1..=raters)
            .map(|r| serde_json::json!({"id": format!("rater{r:02}")}))
            .collect();
        let spec: CampaignSpec = serde_json::from_value(serde_json::json!({
            "name": format!("{}: which review is better?", self.name),
            "kind": "pairwise",
            "overlap": overlap,
            "raters": raters,
            "show": ["prompt", "left", "right"],
            "gold": {"rate": 0.1, "min_gold": 5, "threshold": 0.5},
            "instructions": INSTRUCTIONS,
        }))
        .map_err(|e| Error::invalid(OP, "campaign", "a campaign spec", e.to_string()))?;
        Campaign::create(path, spec, &items)?;
        Ok(n)
    }

    /// PGR of `metric` (`bon_gold`, `rl_gold` or `label_accuracy`) for every arm but `weak`
    /// and `ceiling`, with intervals over seeds at the spec's level.
    pub fn pgr(&self, metric: &str) -> Result<DataFrame> {
        let results = self.results.as_ref().ok_or_else(|| {
            Error::invalid(OP, "pgr", "a run experiment (call run first)", "not run")
        })?;
        pgr_table(
            results,
            &PgrOptions {
                metric: metric.to_string(),
                baseline: "weak".into(),
                ceiling: "ceiling".into(),
                split: None,
                arms: None,
                level: self.spec.level,
            },
        )
    }
}

/// A seed's pairs: among half as many reviews as pairs unless set (each review in about four
/// pairs), so that an aggregate scores a review from several comparisons.
fn seed_pairs(spec: &PreferenceSpec, seed: u64) -> Result<DataFrame> {
    let reviews = spec.task.reviews.unwrap_or((spec.task.pairs / 2).max(2));
    task::pairs(spec.task.pairs, 100 + seed, Some(reviews))
}

/// Campaign item ids: `s<seed>-<pair number from 1>`.
fn item_id(seed: u64, i: usize) -> String {
    format!("s{seed}-{}", i + 1)
}

/// The raters' verdicts on a seed's pairs: their judgments (paused raters' dropped),
/// aggregated by Bradley-Terry. Every judged pair must be one of this seed's.
fn raters_verdicts(path: &str, seed: u64, l: &[String], r: &[String]) -> Result<Vec<bool>> {
    let all = Campaign::open(path)?.judgments()?;
    let prefix = format!("s{seed}-");
    let keep = all
        .lazy()
        .filter(
            col("task")
                .str()
                .starts_with(lit(prefix))
                .and(col("flagged").not()),
        )
        .select([col("worker"), col("left"), col("right"), col("label")])
        .collect()
        .map_err(Error::polars(OP, "reading the raters' judgments"))?;
    if keep.height() == 0 {
        return Err(Error::invalid(
            OP,
            "raters",
            format!("judgments of seed {seed}'s pairs (rated, with the same seeds)"),
            format!("none in {path}"),
        ));
    }
    let known: std::collections::HashSet<(&str, &str)> = l
        .iter()
        .map(String::as_str)
        .zip(r.iter().map(String::as_str))
        .collect();
    let (jl, jr) = (
        column_strings(OP, &keep, "left")?,
        column_strings(OP, &keep, "right")?,
    );
    if let Some(j) = (0..jl.len()).find(|&j| !known.contains(&(jl[j].as_str(), jr[j].as_str()))) {
        return Err(Error::invalid(
            OP,
            "raters",
            format!("a campaign of this spec's pairs (seed {seed})"),
            format!("a judged pair that is not among them (judgment {}): made with another task size or seeds?", j + 1),
        ));
    }
    let c = Comparisons::from_frame(OP, &keep)?;
    by_scores(&oversight::bradley_terry(&c, &Default::default())?, l, r)
}

/// The novices' judgments with assistance: each is replaced by the weak reward model's verdict
/// with probability [`adoption`] of its confidence σ(|score difference|).
fn assisted(
    judged: &DataFrame,
    l: &[String],
    r: &[String],
    sl: &[f64],
    sr: &[f64],
    a: &Assistance,
    seed: u64,
) -> Result<DataFrame> {
    let index: HashMap<(&str, &str), usize> = l
        .iter()
        .zip(r)
        .enumerate()
        .map(|(i, (a, b))| ((a.as_str(), b.as_str()), i))
        .collect();
    let jl = column_strings(OP, judged, "left")?;
    let jr = column_strings(OP, judged, "right")?;
    let mut labels = column_strings(OP, judged, "label")?;
    let mut rng = Rng::derived(seed, 0xA551);
    for (j, label) in labels.iter_mut().enumerate() {
        let i = *index
            .get(&(jl[j].as_str(), jr[j].as_str()))
            .ok_or_else(|| Error::invalid(OP, "judgments", "the seed's pairs", "another pair"))?;
        let c = 1.0 / (1.0 + (-(sl[i] - sr[i]).abs()).exp());
        if rng.uniform() < adoption(a, c) {
            *label = if sl[i] >= sr[i] {
                l[i].clone()
            } else {
                r[i].clone()
            };
        }
    }
    let mut out = judged.clone();
    out.with_column(Column::new("label".into(), labels))
        .map_err(Error::polars(OP, "assisting the judgments"))?;
    Ok(out)
}
