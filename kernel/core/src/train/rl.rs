//! Learning from a reward by sampling: reward functions, best-of-n, and the critic-free policy
//! gradients GRPO (Shao et al. 2024) and RLOO (Ahmadian et al. 2024) with a KL leash to a frozen
//! reference — as a loss (k3) or in the reward (k1), with a fixed or adaptive coefficient.
//!
//! Each step samples `num_generations` completions for each of `prompts_per_step` prompts; the
//! prompts of step `s` and the sampling seed are functions of (seed, s), so a resumed run needs
//! only the step, the optimizer, the KL coefficient and the LoRA generator to continue bit for
//! bit.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Tensor, D};
use polars::prelude::*;
use serde::Deserialize;

use super::checkpoint::{self, Fingerprint, State};
use super::grads::optimizer;
use super::loss::IGNORE;
use super::metrics::{self, Row};
use super::optim::{AdamW, AdamWConfig};
use super::pref_loss::{
    best_of_n_kl, grpo_advantages, kl_estimate, mean_std, rloo_advantages, KlController,
    KlEstimator,
};
use super::trainer::{Hooks, StepReport};
use crate::model::{GenerateOptions, Head, Inputs, Model, Padding};
use crate::nn::{log_softmax_last_dim, row_nll};
use crate::{Error, Options, Result, Rng};

/// A reward: a name (its column), a weight in the sum the policy maximises, and a function of
/// the prompts and completions (lists of equal length) returning one number each.
pub struct RewardFn<'a> {
    pub name: String,
    pub weight: f64,
    #[allow(clippy::type_complexity)]
    pub f: Box<dyn Fn(&[String], &[String]) -> Result<Vec<f64>> + 'a>,
}

impl<'a> RewardFn<'a> {
    /// A reward model (head `scalar`) as a reward function.
    pub fn model(name: impl Into<String>, m: &'a Model) -> Self {
        let max_length = m.arch().max_positions().min(512);
        RewardFn {
            name: name.into(),
            weight: 1.0,
            f: Box::new(move |p, c| super::reward::score(m, p, c, max_length, 8)),
        }
    }
}

/// Each reward function's values on the pairs (checked: one finite number per pair).
pub(crate) fn score_all(
    op: &'static str,
    rewards: &[RewardFn],
    prompts: &[String],
    completions: &[String],
) -> Result<Vec<Vec<f64>>> {
    rewards
        .iter()
        .map(|r| {
            let v = (r.f)(prompts, completions)?;
            if v.len() != prompts.len() {
                return Err(Error::invalid(
                    op,
                    "reward",
                    format!("'{}' to return {} numbers", r.name, prompts.len()),
                    v.len(),
                ));
            }
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::invalid(
                    op,
                    "reward",
                    format!("'{}' to return finite numbers", r.name),
                    format!("{} at {}", v[i], i + 1),
                ));
            }
            Ok(v)
        })
        .collect()
}

pub(super) fn check_rewards(op: &'static str, rewards: &[RewardFn]) -> Result<()> {
    if rewards.is_empty() {
        return Err(Error::invalid(
            op,
            "reward",
            "at least one reward function",
            "none",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for r in rewards {
        if !seen.insert(r.name.as_str()) {
            return Err(Error::invalid(
                op,
                "reward",
                "distinct reward names",
                &r.name,
            ));
        }
        if !r.weight.is_finite() {
            return Err(Error::invalid(op, "weights", "finite weights", r.weight));
        }
    }
    Ok(())
}

pub(crate) fn require_policy(op: &'static str, m: &Model) -> Result<()> {
    if m.head() != Head::Lm {
        return Err(Error::invalid(
            op,
            "model",
            "a policy with an 'lm' head",
            format!("head '{}'", m.head().name()),
        ));
    }
    m.require_tokenizer(op).map(|_| ())
}

/// Best-of-n sampling: `n` samples per prompt, each scored by every reward; the sample with
/// the highest first reward is kept. Returns one row per prompt: `prompt, completion`, each
/// reward of the kept sample, `n`, `kl_bon` (the analytic KL from the policy, `log n −
/// (n−1)/n`, exact for continuous rewards without ties) and `kl_measured` (the plug-in
/// estimate `E[log((F(r)^n − F⁻(r)^n)/(F(r) − F⁻(r)))]` with the reward's CDF `F` (and `F⁻`,
/// strictly below) estimated from the `n` samples and `kl_pool` more: it accounts for ties).
pub fn best_of_n(
    policy: &Model,
    prompts: &[String],
    rewards: &[RewardFn],
    n: usize,
    kl_pool: usize,
    o: &GenerateOptions,
    hooks: Hooks,
) -> Result<DataFrame> {
    const OP: &str = "best_of_n";
    o.check(OP)?;
    crate::validate::positive_count(OP, "n", n)?;
    require_policy(OP, policy)?;
    check_rewards(OP, rewards)?;
    if let Some(r) = rewards
        .iter()
        .find(|r| ["prompt", "completion", "n", "kl_bon", "kl_measured"].contains(&r.name.as_str()))
    {
        return Err(Error::invalid(
            OP,
            "reward_names",
            "names other than prompt, completion, n, kl_bon, kl_measured",
            &r.name,
        ));
    }
    if prompts.is_empty() {
        return Err(Error::invalid(OP, "prompts", "at least one prompt", "none"));
    }
    let per = n + kl_pool;
    let repeated: Vec<String> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.clone(), per))
        .collect();
    let gens = policy.generate(&repeated, o, hooks.progress, hooks.interrupt)?;
    let completions: Vec<String> = gens.iter().map(|g| g.completion.clone()).collect();
    let scores = score_all(OP, rewards, &repeated, &completions)?;
    let mut best_rows = Vec::with_capacity(prompts.len());
    let mut kl_measured = Vec::with_capacity(prompts.len());
    for p in 0..prompts.len() {
        let first = &scores[0][p * per..(p + 1) * per];
        // Ties go to the earliest sample.
        let best = (0..n).fold(0, |b, i| if first[i] > first[b] { i } else { b });
        best_rows.push(p * per + best);
        let r = first[best];
        let below = first.iter().filter(|&&x| x < r).count() as f64 / per as f64;
        let at_most = first.iter().filter(|&&x| x <= r).count() as f64 / per as f64;
        let nn = n as i32;
        let kl = ((at_most.powi(nn) - below.powi(nn)) / (at_most - below)).ln();
        kl_measured.push(kl);
    }
    let mut cols = vec![
        Column::new(
            "prompt".into(),
            best_rows
                .iter()
                .map(|&i| repeated[i].clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "completion".into(),
            best_rows
                .iter()
                .map(|&i| completions[i].clone())
                .collect::<Vec<_>>(),
        ),
    ];
    for (r, s) in rewards.iter().zip(&scores) {
        cols.push(Column::new(
            r.name.as_str().into(),
            best_rows.iter().map(|&i| s[i]).collect::<Vec<_>>(),
        ));
    }
    cols.push(Column::new("n".into(), vec![n as i64; prompts.len()]));
    cols.push(Column::new(
        "kl_bon".into(),
        vec![best_of_n_kl(n); prompts.len()],
    ));
    cols.push(Column::new("kl_measured".into(), kl_measured));
    DataFrame::new_infer_height(cols).map_err(Error::polars(OP, "building the result"))
}

fn sixteen() -> usize {
    16
}
fn four() -> usize {
    4
}
fn eight() -> usize {
    8
}
fn lr_default() -> f64 {
    1e-6
}
fn beta_default() -> f64 {
    0.04
}
fn eps_clip() -> f64 {
    0.2
}
fn one() -> usize {
    1
}
fn one_f() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn two() -> usize {
    2
}

/// How a group's rewards become advantages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupLoss {
    /// `(r − mean)/(std + 1e-4)` within the group (`scale_rewards = false`: `r − mean`).
    Grpo,
    /// `r − mean of the other k − 1` (leave-one-out baseline).
    Rloo,
}

/// The KL leash: a fixed coefficient, or lm-human-preferences' adaptive controller.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KlOptions {
    /// A fixed coefficient β (overrides the trainer's `beta`).
    #[serde(default)]
    pub coef: Option<f64>,
    #[serde(default)]
    pub adaptive: bool,
    /// Adaptive: starting β.
    #[serde(default)]
    pub init: Option<f64>,
    /// Adaptive: the KL per sequence it steers toward.
    #[serde(default)]
    pub target: Option<f64>,
    /// Adaptive: samples over which β moves by at most 20%.
    #[serde(default)]
    pub horizon: Option<f64>,
}

/// GRPO's and RLOO's settings (TRL's names where it has them).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Optimizer steps (each samples a fresh batch).
    #[serde(default = "sixteen")]
    pub steps: usize,
    /// Prompts per step.
    #[serde(default = "four")]
    pub prompts_per_step: usize,
    /// Samples per prompt (k ≥ 2).
    #[serde(default = "four")]
    pub num_generations: usize,
    /// Sequences per forward/backward pass.
    #[serde(default = "eight")]
    pub batch_size: usize,
    /// Policy updates per sampled batch (μ; above 1 the ratio is clipped to 1 ± `epsilon`).
    #[serde(default = "one")]
    pub num_iterations: usize,
    #[serde(default = "eps_clip")]
    pub epsilon: f64,
    #[serde(default = "lr_default")]
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "max_norm")]
    pub max_grad_norm: Option<f64>,
    /// KL coefficient (0: no reference model, no KL term).
    #[serde(default = "beta_default")]
    pub beta: f64,
    /// The KL leash's form (default: the fixed `beta`).
    #[serde(default)]
    pub kl: KlOptions,
    /// `k3`: KL as a loss term per token (GRPO's); `k1`: subtracted from the reward per
    /// sequence (RLOO's, lm-human-preferences').
    #[serde(default)]
    pub kl_estimator: KlEstimator,
    #[serde(default = "yes")]
    pub scale_rewards: bool,
    #[serde(default = "max_new")]
    pub max_new_tokens: usize,
    #[serde(default = "one_f")]
    pub temperature: f64,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Prompts are user messages in the policy's chat template.
    #[serde(default)]
    pub chat: bool,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub checkpoint_dir: Option<PathBuf>,
    #[serde(default)]
    pub checkpoint_every: Option<usize>,
    #[serde(default = "two")]
    pub keep_checkpoints: usize,
    #[serde(default)]
    pub resume: bool,
}

fn max_norm() -> Option<f64> {
    Some(1.0)
}
fn max_new() -> usize {
    64
}

impl Default for GroupConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

impl Options for GroupConfig {
    fn check(&self, op: &'static str) -> Result<()> {
        use crate::validate::{non_negative, positive, positive_count, positive_count_opt};
        positive_count(op, "steps", self.steps)?;
        positive_count(op, "prompts_per_step", self.prompts_per_step)?;
        positive_count(op, "batch_size", self.batch_size)?;
        positive_count(op, "num_iterations", self.num_iterations)?;
        positive_count(op, "max_new_tokens", self.max_new_tokens)?;
        positive_count(op, "keep_checkpoints", self.keep_checkpoints)?;
        positive_count_opt(op, "checkpoint_every", self.checkpoint_every)?;
        if self.num_generations < 2 {
            return Err(Error::invalid(
                op,
                "num_generations",
                "at least 2 samples per prompt (the group is the baseline)",
                self.num_generations,
            ));
        }
        positive(op, "epsilon", self.epsilon)?;
        non_negative(op, "lr", self.lr)?;
        non_negative(op, "weight_decay", self.weight_decay)?;
        non_negative(op, "beta", self.beta)?;
        positive(op, "temperature", self.temperature)?;
        if let Some(n) = self.max_grad_norm {
            positive(op, "max_grad_norm", n)?;
        }
        self.kl.check(op)?;
        if (self.checkpoint_every.is_some() || self.resume) && self.checkpoint_dir.is_none() {
            return Err(Error::invalid(
                op,
                "checkpoint_dir",
                "a directory when checkpoint_every or resume is set",
                "none",
            ));
        }
        Ok(())
    }
}

impl KlOptions {
    pub(super) fn check(&self, op: &'static str) -> Result<()> {
        use crate::validate::{non_negative, positive};
        let k = self;
        if let Some(c) = k.coef {
            non_negative(op, "kl.coef", c)?;
        }
        if k.adaptive {
            if k.coef.is_some() {
                return Err(Error::invalid(op, "kl", "either coef or adaptive", "both"));
            }
            positive(op, "kl.init", k.init.unwrap_or(0.2))?;
            positive(op, "kl.target", k.target.unwrap_or(6.0))?;
            positive(op, "kl.horizon", k.horizon.unwrap_or(10_000.0))?;
        } else if k.init.is_some() || k.target.is_some() || k.horizon.is_some() {
            return Err(Error::invalid(
                op,
                "kl",
                "init, target and horizon only with adaptive = true",
                "them without it",
            ));
        }
        Ok(())
    }

    /// The controller these options describe, `beta` when neither `coef` nor `adaptive`.
    pub(super) fn controller(&self, beta: f64) -> KlController {
        if self.adaptive {
            KlController::adaptive(
                self.init.unwrap_or(0.2),
                self.target.unwrap_or(6.0),
                self.horizon.unwrap_or(10_000.0),
            )
        } else {
            KlController::fixed(self.coef.unwrap_or(beta))
        }
    }
}

impl GroupConfig {
    fn generate_options(&self, step: usize) -> GenerateOptions {
        GenerateOptions {
            max_new_tokens: self.max_new_tokens,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            // The sampling seed of step s: a function of (seed, s), so resumption is exact.
            seed: Rng::derived(self.seed, 5000 + step as u64).next_u64(),
            batch_size: self.batch_size,
            chat: self.chat,
            ..GenerateOptions::default()
        }
    }
}

/// One pass of a policy over sequences: per-token log-probabilities (B, T−1), the completion
/// mask (positions predicting completion tokens), the mean entropy there (without gradient;
/// 0 unless asked) and the hidden states of those positions (B, T−1, H), for a value head.
pub(super) struct LmPass {
    pub logps: Tensor,
    pub mask: Tensor,
    pub entropy: f64,
    pub hidden: Tensor,
}

pub(super) fn lm_pass(
    model: &Model,
    seqs: &[Vec<u32>],
    starts: &[usize],
    temperature: f64,
    train: bool,
    entropy: bool,
) -> Result<LmPass> {
    let pad = model.tokenizer().map(|t| t.pad).unwrap_or(0);
    let x = Inputs::pad(seqs, pad, Padding::Right)?;
    let (b, t) = (x.batch, x.len);
    let hidden = model.hidden(&x, None, train)?.narrow(1, 0, t - 1)?;
    let logits = model.lm_logits(&hidden)?;
    let v = logits.dim(2)?;
    let mut targets = Vec::with_capacity(b * (t - 1));
    let mut mask = Vec::with_capacity(b * (t - 1));
    for (seq, &start) in seqs.iter().zip(starts) {
        for j in 1..t {
            let keep = j >= start.max(1) && j < seq.len();
            targets.push(if keep { seq[j] as i64 } else { IGNORE });
            mask.push(if keep { 1f32 } else { 0.0 });
        }
    }
    // The distribution sampled from: logits over the temperature (as TRL scores them).
    let flat = (logits.reshape((b * (t - 1), v))?.to_dtype(DType::F32)? / temperature)?;
    let targets = Tensor::from_vec(targets, b * (t - 1), flat.device())?;
    let (nll, _) = row_nll(&flat, &targets, Some(IGNORE))?;
    let mask = Tensor::from_vec(mask, (b, t - 1), flat.device())?;
    let mut h = 0.0;
    if entropy {
        let lp = log_softmax_last_dim(&flat.detach())?;
        let ent = (lp.exp()? * &lp)?
            .sum(D::Minus1)?
            .neg()?
            .reshape((b, t - 1))?;
        let n = mask.sum_all()?.to_scalar::<f32>()?.max(1.0);
        h = ((ent * &mask)?.sum_all()?.to_scalar::<f32>()? / n) as f64;
    }
    Ok(LmPass {
        logps: nll.neg()?.reshape((b, t - 1))?,
        mask,
        entropy: h,
        hidden,
    })
}

/// One sampled group batch, ready for the loss.
struct Batch {
    seqs: Vec<Vec<u32>>,
    starts: Vec<usize>,
    advantages: Vec<f64>,
    /// Per-token log-probabilities under the sampling policy (num_iterations > 1) and the
    /// reference (β > 0), one row per sequence, completion positions only.
    old: Option<Vec<Vec<f32>>>,
    reference: Option<Vec<Vec<f32>>>,
}

/// Completion-position values of a (B, T−1) tensor, row by row.
pub(super) fn rows_of(t: &Tensor, mask: &Tensor) -> Result<Vec<Vec<f32>>> {
    let v: Vec<Vec<f32>> = t.detach().to_vec2()?;
    let m: Vec<Vec<f32>> = mask.to_vec2()?;
    Ok(v.into_iter()
        .zip(m)
        .map(|(row, mr)| {
            row.into_iter()
                .zip(mr)
                .filter(|(_, k)| *k > 0.0)
                .map(|(x, _)| x)
                .collect()
        })
        .collect())
}

/// Places completion-position rows back into a (B, T−1) tensor (zeros elsewhere).
pub(super) fn unrows(rows: &[&Vec<f32>], mask: &Tensor) -> Result<Tensor> {
    let m: Vec<Vec<f32>> = mask.to_vec2()?;
    let (b, t) = mask.dims2()?;
    let mut out = vec![0f32; b * t];
    for (r, (row, mr)) in rows.iter().zip(&m).enumerate() {
        let mut it = row.iter();
        for (j, &k) in mr.iter().enumerate() {
            if k > 0.0 {
                out[r * t + j] = *it.next().expect("one value per completion position");
            }
        }
    }
    Ok(Tensor::from_vec(out, (b, t), mask.device())?)
}

/// Trains `policy` with GRPO or RLOO against the rewards (their weighted sum); returns one row
/// per step with TRL's metric names.
#[allow(clippy::too_many_arguments)]
pub fn train_group(
    op: &'static str,
    policy: &Model,
    reference: Option<&Model>,
    prompts: &[String],
    rewards: &[RewardFn],
    loss: GroupLoss,
    cfg: &GroupConfig,
    hooks: Hooks,
) -> Result<DataFrame> {
    cfg.check(op)?;
    require_policy(op, policy)?;
    check_rewards(op, rewards)?;
    if prompts.is_empty() {
        return Err(Error::invalid(op, "prompts", "at least one prompt", "none"));
    }
    let k = cfg.num_generations;
    let mut kl = cfg.kl.controller(cfg.beta);
    let owned_ref;
    let reference = match reference {
        Some(r) => Some(r),
        None if kl.value > 0.0 || kl.adaptive.is_some() => {
            owned_ref = policy.frozen_reference()?;
            Some(&owned_ref)
        }
        None => None,
    };
    let prompt_ids = policy.prompt_ids(op, prompts, cfg.chat)?;
    let (names, mut grads, mut opt) = optimizer(
        op,
        policy,
        AdamWConfig {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..AdamWConfig::default()
        },
    )?;
    let fingerprint = Fingerprint {
        examples: prompts.len(),
        batch_size: cfg.prompts_per_step,
        grad_accum: k,
        seed: cfg.seed,
        total_steps: cfg.steps,
        trainable: names.len(),
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut start = 0;
    if cfg.resume {
        let dir = cfg.checkpoint_dir.as_ref().expect("checked");
        if let Some((_, path)) = checkpoint::list(dir)?.pop() {
            let state = checkpoint::restore(&path, policy, &mut opt, &names, &fingerprint)?;
            start = state.step;
            rows = state.metrics;
            if let Some(c) = state.kl_coef {
                kl.value = c;
            }
        }
    }
    let save = |opt: &AdamW, rows: &[Row], step: usize, kl: &KlController| -> Result<()> {
        let Some(dir) = &cfg.checkpoint_dir else {
            return Ok(());
        };
        let state = State {
            step,
            fingerprint: fingerprint.clone(),
            lora_rng: policy.lora_state().map(|l| l.rng_state()),
            metrics: rows.to_vec(),
            kl_coef: Some(kl.value),
            value_lora_rng: None,
            optimizer_steps: None,
        };
        checkpoint::save(dir, policy, opt, &names, &state, cfg.keep_checkpoints)?;
        Ok(())
    };
    hooks.progress.start(op, cfg.steps);
    hooks.progress.update(start, "");
    let began = Instant::now();
    let elapsed_before = rows.last().map(|r| r.elapsed_s).unwrap_or(0.0);
    let mut order = PromptOrder::new(cfg.seed, prompts.len());
    let result = (|| -> Result<()> {
        for step in start..cfg.steps {
            if let Some(i) = hooks.interrupt {
                if i.is_requested() {
                    if step > start {
                        save(&opt, &rows, step, &kl)?;
                    }
                    return Err(Error::Interrupted);
                }
            }
            let t0 = Instant::now();
            let picked = order.of_step(step, cfg.prompts_per_step);
            let group_prompts: Vec<String> = picked
                .iter()
                .flat_map(|&i| std::iter::repeat_n(prompts[i].clone(), k))
                .collect();
            let gens = match policy.generate(
                &group_prompts,
                &cfg.generate_options(step),
                &crate::Silent,
                hooks.interrupt,
            ) {
                Ok(g) => g,
                // Ctrl-C while sampling (most of a step): keep the steps done so far.
                Err(Error::Interrupted) if step > start => {
                    save(&opt, &rows, step, &kl)?;
                    return Err(Error::Interrupted);
                }
                Err(e) => return Err(e),
            };
            let completions: Vec<String> = gens.iter().map(|g| g.completion.clone()).collect();
            let scores = score_all(op, rewards, &group_prompts, &completions)?;
            let mut total: Vec<f64> = (0..gens.len())
                .map(|i| {
                    rewards
                        .iter()
                        .zip(&scores)
                        .map(|(r, s)| r.weight * s[i])
                        .sum()
                })
                .collect();
            let mut seqs = Vec::with_capacity(gens.len());
            let mut starts = Vec::with_capacity(gens.len());
            for (j, g) in gens.iter().enumerate() {
                let mut s = prompt_ids[picked[j / k]].clone();
                starts.push(s.len());
                s.extend(&g.token_ids);
                seqs.push(s);
            }
            let idx: Vec<usize> = (0..seqs.len()).collect();
            let mut batch = Batch {
                seqs,
                starts,
                advantages: Vec::new(),
                old: None,
                reference: None,
            };
            let mut seq_kl = vec![0.0; idx.len()];
            if let Some(r) = reference {
                let mut all = Vec::with_capacity(idx.len());
                for chunk in idx.chunks(cfg.batch_size) {
                    let (s, st) = pick(&batch, chunk);
                    let p = lm_pass(r, &s, &st, cfg.temperature, false, false)?;
                    all.extend(rows_of(&p.logps, &p.mask)?);
                }
                batch.reference = Some(all);
            }
            if cfg.num_iterations > 1 || reference.is_some() {
                let mut all = Vec::with_capacity(idx.len());
                for chunk in idx.chunks(cfg.batch_size) {
                    let (s, st) = pick(&batch, chunk);
                    let p = lm_pass(policy, &s, &st, cfg.temperature, false, false)?;
                    all.extend(rows_of(&p.logps, &p.mask)?);
                }
                if let Some(refs) = &batch.reference {
                    for (i, (p, r)) in all.iter().zip(refs).enumerate() {
                        // k1 per sequence: Σ_t (log π − log π_ref).
                        seq_kl[i] = p.iter().zip(r).map(|(a, b)| (a - b) as f64).sum();
                    }
                }
                // With one update per batch the ratio's denominator is the loss pass's own
                // log-probabilities, detached (TRL's), so LoRA dropout cannot make it differ
                // from 1; eval-mode log-probabilities serve the KL only.
                if cfg.num_iterations > 1 {
                    batch.old = Some(all);
                }
            }
            let beta = kl.value;
            // The reward metrics stay the rewards' own; k1 penalises a copy.
            let raw = total.clone();
            if cfg.kl_estimator == KlEstimator::K1 && reference.is_some() {
                for (t, d) in total.iter_mut().zip(&seq_kl) {
                    *t -= beta * d;
                }
            }
            batch.advantages = match loss {
                GroupLoss::Grpo => grpo_advantages(&total, k, cfg.scale_rewards)?,
                GroupLoss::Rloo => rloo_advantages(&total, k)?,
            };
            let n_seq = idx.len() as f64;
            let mut loss_sum = 0.0;
            let (mut clip_low, mut clip_high, mut clip_region, mut entropy, mut kl_loss) =
                (0.0, 0.0, 0.0, 0.0, 0.0);
            let mut grad_norm = 0.0;
            for _ in 0..cfg.num_iterations {
                for chunk in idx.chunks(cfg.batch_size) {
                    let (s, st) = pick(&batch, chunk);
                    let LmPass {
                        logps: lp,
                        mask,
                        entropy: h,
                        ..
                    } = lm_pass(policy, &s, &st, cfg.temperature, true, true)?;
                    let dev = lp.device().clone();
                    let old = match &batch.old {
                        Some(o) => {
                            unrows(&chunk.iter().map(|&i| &o[i]).collect::<Vec<_>>(), &mask)?
                        }
                        None => lp.detach(),
                    };
                    let (b, t) = mask.dims2()?;
                    let adv: Vec<f32> = chunk
                        .iter()
                        .flat_map(|&i| std::iter::repeat_n(batch.advantages[i] as f32, t))
                        .collect();
                    let adv = Tensor::from_vec(adv, (b, t), &dev)?;
                    let ratio = (&lp - &old)?.exp()?;
                    let clipped = ratio.clamp(1.0 - cfg.epsilon, 1.0 + cfg.epsilon)?;
                    let mut per_token = (ratio.broadcast_mul(&adv)?)
                        .minimum(&clipped.broadcast_mul(&adv)?)?
                        .neg()?;
                    if let (Some(refs), KlEstimator::K3) = (&batch.reference, cfg.kl_estimator) {
                        let r =
                            unrows(&chunk.iter().map(|&i| &refs[i]).collect::<Vec<_>>(), &mask)?;
                        let k3 = (kl_estimate(&lp, &r, KlEstimator::K3)? * &mask)?;
                        kl_loss += k3
                            .sum(1)?
                            .div(&mask.sum(1)?.clamp(1.0, f64::MAX)?)?
                            .sum_all()?
                            .to_scalar::<f32>()? as f64
                            / n_seq
                            / cfg.num_iterations as f64;
                        per_token = (per_token + (k3 * beta)?)?;
                    }
                    // GRPO's aggregation: the mean over each sequence's tokens, then over the
                    // step's sequences.
                    let lens = mask.sum(1)?.clamp(1.0, f64::MAX)?;
                    let seq_loss = (per_token * &mask)?.sum(1)?.div(&lens)?;
                    let l = (seq_loss.sum_all()? / n_seq)?;
                    loss_sum += l.to_scalar::<f32>()? as f64 / cfg.num_iterations as f64;
                    let ratio_v = ratio.detach();
                    let low = ratio_v
                        .lt(1.0 - cfg.epsilon)?
                        .to_dtype(DType::F32)?
                        .mul(&adv.lt(0.0)?.to_dtype(DType::F32)?)?;
                    let high = ratio_v
                        .gt(1.0 + cfg.epsilon)?
                        .to_dtype(DType::F32)?
                        .mul(&adv.gt(0.0)?.to_dtype(DType::F32)?)?;
                    let count = mask.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64;
                    let frac = |x: &Tensor| -> Result<f64> {
                        Ok((x * &mask)?.sum_all()?.to_scalar::<f32>()? as f64 / count)
                    };
                    let w = chunk.len() as f64 / n_seq / cfg.num_iterations as f64;
                    clip_low += frac(&low)? * w;
                    clip_high += frac(&high)? * w;
                    clip_region += frac(&(low + high)?)? * w;
                    entropy += h * w;
                    grads.add(&l)?;
                }
                grad_norm = grads.step(&mut opt, cfg.max_grad_norm)?;
            }
            if !loss_sum.is_finite() {
                return Err(Error::invalid(
                    op,
                    "lr",
                    "settings under which the loss stays finite",
                    format!("loss {loss_sum} at step {}", step + 1),
                ));
            }
            let mean_kl = seq_kl.iter().sum::<f64>() / n_seq;
            kl.update(mean_kl, idx.len());
            let (reward_mean, reward_std) = mean_std(&raw);
            let zero_std = raw.chunks(k).filter(|g| mean_std(g).1 < 1e-12).count() as f64
                / cfg.prompts_per_step as f64;
            let lengths: Vec<f64> = gens.iter().map(|g| g.token_ids.len() as f64).collect();
            let clipped_ratio =
                gens.iter().filter(|g| g.finish_reason == "length").count() as f64 / n_seq;
            let tokens: usize = gens.iter().map(|g| g.token_ids.len()).sum();
            let dt = t0.elapsed().as_secs_f64();
            let done = step + 1;
            let mut extra = vec![
                ("reward".to_string(), reward_mean),
                ("reward_std".to_string(), reward_std),
                ("frac_reward_zero_std".to_string(), zero_std),
            ];
            for (r, s) in rewards.iter().zip(&scores) {
                extra.push((format!("rewards/{}", r.name), s.iter().sum::<f64>() / n_seq));
            }
            extra.extend([
                ("kl".to_string(), mean_kl),
                ("kl_loss".to_string(), kl_loss),
                ("beta".to_string(), beta),
                ("entropy".to_string(), entropy),
                ("clip_ratio/low_mean".to_string(), clip_low),
                ("clip_ratio/high_max".to_string(), clip_high),
                ("clip_ratio/region_mean".to_string(), clip_region),
                (
                    "completions/mean_length".to_string(),
                    lengths.iter().sum::<f64>() / n_seq,
                ),
                ("completions/clipped_ratio".to_string(), clipped_ratio),
            ]);
            rows.push(Row {
                step: done,
                epoch: (done * cfg.prompts_per_step) as f64 / prompts.len() as f64,
                loss: loss_sum,
                lr: cfg.lr,
                grad_norm,
                tokens,
                tokens_per_s: tokens as f64 / dt.max(1e-9),
                elapsed_s: elapsed_before + began.elapsed().as_secs_f64(),
                eval_loss: None,
                eval_accuracy: None,
                extra,
            });
            hooks
                .progress
                .update(done, &format!("reward {reward_mean:.3}"));
            after_step(&hooks, &rows, cfg.steps, cfg.checkpoint_every, || {
                save(&opt, &rows, done, &kl)
            })?;
        }
        Ok(())
    })();
    hooks.progress.finish();
    result?;
    metrics::frame(&rows)
}

/// The prompts of step `s`: positions s·P .. (s+1)·P of a seeded order of the prompts,
/// reshuffled at every pass over them, so a step's prompts depend only on (seed, s).
pub(super) struct PromptOrder {
    seed: u64,
    n: usize,
    pass: Option<(usize, Vec<usize>)>,
}

impl PromptOrder {
    pub(super) fn new(seed: u64, n: usize) -> Self {
        PromptOrder {
            seed,
            n,
            pass: None,
        }
    }

    pub(super) fn of_step(&mut self, step: usize, per_step: usize) -> Vec<usize> {
        (0..per_step)
            .map(|j| {
                let pos = step * per_step + j;
                let (pass, at) = (pos / self.n, pos % self.n);
                if self.pass.as_ref().map(|(e, _)| *e) != Some(pass) {
                    let mut o: Vec<usize> = (0..self.n).collect();
                    Rng::derived(self.seed, 1000 + pass as u64).shuffle(&mut o);
                    self.pass = Some((pass, o));
                }
                self.pass.as_ref().expect("set").1[at]
            })
            .collect()
    }
}

/// After a sampled step's row is logged: the `on_step` hook (an error from it stops training,
/// checkpointing first when checkpoints are on) and the periodic checkpoint.
pub(super) fn after_step(
    hooks: &Hooks,
    rows: &[Row],
    total: usize,
    checkpoint_every: Option<usize>,
    save: impl Fn() -> Result<()>,
) -> Result<()> {
    let last = rows.last().expect("a row was logged");
    if let Some(f) = hooks.on_step {
        let report = StepReport {
            step: last.step,
            total,
            epoch: last.epoch,
            loss: last.loss,
            lr: last.lr,
            grad_norm: last.grad_norm,
            eval_loss: None,
            eval_accuracy: None,
        };
        if let Err(e) = f(&report) {
            if checkpoint_every.is_some() {
                save()?;
            }
            return Err(e);
        }
    }
    if let Some(every) = checkpoint_every {
        if last.step.is_multiple_of(every) || last.step == total {
            save()?;
        }
    }
    Ok(())
}

fn pick(b: &Batch, chunk: &[usize]) -> (Vec<Vec<u32>>, Vec<usize>) {
    (
        chunk.iter().map(|&i| b.seqs[i].clone()).collect(),
        chunk.iter().map(|&i| b.starts[i]).collect(),
    )
}
