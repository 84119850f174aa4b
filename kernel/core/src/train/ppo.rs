//! PPO for language models as in Ziegler et al. 2019 and Stiennon et al. 2020 (TRL's
//! `PPOTrainer`): a policy, a frozen reference, a value function (its own model with a scalar
//! head, or a value head on the policy's last hidden states), the KL to the reference paid per
//! token inside the reward with a fixed or adaptive coefficient, GAE, whitened advantages, and
//! several epochs of clipped policy and value updates on each sampled batch.
//!
//! As in GRPO (`rl.rs`) the prompts and the sampling seed of step `s` are functions of
//! (seed, s), and the minibatch order of epoch `e` of step `s` a function of (seed, s, e), so
//! a checkpoint (the optimizer over policy and value, β, the LoRA generators) resumes bit for
//! bit.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Tensor, Var};
use polars::prelude::*;
use serde::Deserialize;

use super::checkpoint::{self, Fingerprint, State};
use super::grads::optimizer_over;
use super::metrics::{self, Row};
use super::optim::{AdamW, AdamWConfig};
use super::pref_loss::{gae, ppo_policy_loss, ppo_value_loss, whiten, KlController, KlEstimator};
use super::rl::{
    after_step, check_rewards, lm_pass, require_policy, rows_of, score_all, unrows, KlOptions,
    LmPass, PromptOrder, RewardFn,
};
use super::trainer::Hooks;
use crate::model::{GenerateOptions, Inputs, Model, Padding};
use crate::{Error, Options, Result, Rng};

fn d_steps() -> usize {
    16
}
fn d_eight() -> usize {
    8
}
fn d_one() -> usize {
    1
}
fn d_four() -> usize {
    4
}
fn d_two() -> usize {
    2
}
fn d_clip() -> f64 {
    0.2
}
fn d_vf_coef() -> f64 {
    0.1
}
fn d_gamma() -> f64 {
    1.0
}
fn d_lam() -> f64 {
    0.95
}
fn d_lr() -> f64 {
    3e-6
}
fn d_beta() -> f64 {
    0.05
}
fn d_k1() -> KlEstimator {
    KlEstimator::K1
}
fn d_max_new() -> usize {
    64
}
fn d_temperature() -> f64 {
    0.7
}
fn d_max_norm() -> Option<f64> {
    Some(1.0)
}

/// PPO's settings, TRL's `PPOConfig` names and defaults where it has them (`beta` is TRL's
/// `kl_coef`, named as in the other trainers).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoConfig {
    /// Sampled batches, each followed by `num_ppo_epochs` passes of updates.
    #[serde(default = "d_steps")]
    pub steps: usize,
    /// Prompts per batch, one completion each (TRL's `batch_size`).
    #[serde(default = "d_eight")]
    pub prompts_per_step: usize,
    /// Sequences per forward and backward pass.
    #[serde(default = "d_eight")]
    pub batch_size: usize,
    /// Optimizer steps per epoch: the batch is split into this many minibatches.
    #[serde(default = "d_one")]
    pub num_mini_batches: usize,
    #[serde(default = "d_four")]
    pub num_ppo_epochs: usize,
    #[serde(default = "d_clip")]
    pub cliprange: f64,
    #[serde(default = "d_clip")]
    pub cliprange_value: f64,
    #[serde(default = "d_vf_coef")]
    pub vf_coef: f64,
    #[serde(default = "d_gamma")]
    pub gamma: f64,
    #[serde(default = "d_lam")]
    pub lam: f64,
    #[serde(default)]
    pub whiten_rewards: bool,
    /// Subtracted from the score of a completion cut by `max_new_tokens`.
    #[serde(default)]
    pub missing_eos_penalty: Option<f64>,
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "d_max_norm")]
    pub max_grad_norm: Option<f64>,
    /// The KL coefficient (0: no reference, no penalty).
    #[serde(default = "d_beta")]
    pub beta: f64,
    #[serde(default)]
    pub kl: KlOptions,
    /// The per-token KL in the reward: `k1` (`log π − log π_ref`) or `k3`.
    #[serde(default = "d_k1")]
    pub kl_estimator: KlEstimator,
    #[serde(default = "d_max_new")]
    pub max_new_tokens: usize,
    #[serde(default = "d_temperature")]
    pub temperature: f64,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub chat: bool,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub checkpoint_dir: Option<PathBuf>,
    #[serde(default)]
    pub checkpoint_every: Option<usize>,
    #[serde(default = "d_two")]
    pub keep_checkpoints: usize,
    #[serde(default)]
    pub resume: bool,
}

impl Default for PpoConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

impl Options for PpoConfig {
    fn check(&self, op: &'static str) -> Result<()> {
        use crate::validate::{non_negative, positive, positive_count, positive_count_opt};
        positive_count(op, "steps", self.steps)?;
        positive_count(op, "prompts_per_step", self.prompts_per_step)?;
        positive_count(op, "batch_size", self.batch_size)?;
        positive_count(op, "num_mini_batches", self.num_mini_batches)?;
        positive_count(op, "num_ppo_epochs", self.num_ppo_epochs)?;
        positive_count(op, "max_new_tokens", self.max_new_tokens)?;
        positive_count(op, "keep_checkpoints", self.keep_checkpoints)?;
        positive_count_opt(op, "checkpoint_every", self.checkpoint_every)?;
        if !self.prompts_per_step.is_multiple_of(self.num_mini_batches) {
            return Err(Error::invalid(
                op,
                "num_mini_batches",
                format!("a divisor of prompts_per_step = {}", self.prompts_per_step),
                self.num_mini_batches,
            ));
        }
        positive(op, "cliprange", self.cliprange)?;
        positive(op, "cliprange_value", self.cliprange_value)?;
        non_negative(op, "vf_coef", self.vf_coef)?;
        crate::validate::probability(op, "gamma", self.gamma)?;
        crate::validate::probability(op, "lam", self.lam)?;
        if let Some(p) = self.missing_eos_penalty {
            non_negative(op, "missing_eos_penalty", p)?;
        }
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

impl PpoConfig {
    fn generate_options(&self, step: usize) -> GenerateOptions {
        GenerateOptions {
            max_new_tokens: self.max_new_tokens,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: Rng::derived(self.seed, 5000 + step as u64).next_u64(),
            batch_size: self.batch_size,
            chat: self.chat,
            ..GenerateOptions::default()
        }
    }
}

/// The value function: its own model (a decoder with a scalar head, applied at every
/// position), or a linear head on the policy's final hidden states (trained through the
/// policy's trunk, as lm-human-preferences and TRL's older `ValueHead` do).
enum Critic<'a> {
    Model(&'a Model),
    Head { weight: Var, bias: Var },
}

impl Critic<'_> {
    /// Values (B, T−1) in f32 at the positions of `pass` (those predicting each next token).
    fn values(&self, pass: &LmPass, seqs: &[Vec<u32>], pad: u32, train: bool) -> Result<Tensor> {
        match self {
            Critic::Head { weight, bias } => {
                let (b, t, h) = pass.hidden.dims3()?;
                Ok(pass
                    .hidden
                    .to_dtype(DType::F32)?
                    .reshape((b * t, h))?
                    .matmul(weight.as_tensor())?
                    .broadcast_add(bias.as_tensor())?
                    .reshape((b, t))?)
            }
            Critic::Model(m) => {
                let x = Inputs::pad(seqs, pad, Padding::Right)?;
                let t = x.len;
                let hidden = m.hidden(&x, None, train)?.narrow(1, 0, t - 1)?;
                Ok(m.token_values(&hidden, train)?.to_dtype(DType::F32)?)
            }
        }
    }
}

/// One sampled batch with everything the updates need, one row per sequence over its
/// completion tokens.
struct Rollout {
    seqs: Vec<Vec<u32>>,
    starts: Vec<usize>,
    logps: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    advantages: Vec<Vec<f32>>,
    returns: Vec<Vec<f32>>,
}

impl Rollout {
    fn pick(&self, chunk: &[usize]) -> (Vec<Vec<u32>>, Vec<usize>) {
        (
            chunk.iter().map(|&i| self.seqs[i].clone()).collect(),
            chunk.iter().map(|&i| self.starts[i]).collect(),
        )
    }
}

fn rows_at<'a>(rows: &'a [Vec<f32>], chunk: &[usize]) -> Vec<&'a Vec<f32>> {
    chunk.iter().map(|&i| &rows[i]).collect()
}

/// Per-token KL of sampled tokens from `log π` and `log π_ref` (TRL's PPO estimators).
fn token_kl(lp: f32, rf: f32, kind: KlEstimator) -> f64 {
    let logr = (rf - lp) as f64;
    match kind {
        KlEstimator::K1 => -logr,
        KlEstimator::K3 => logr.exp() - 1.0 - logr,
    }
}

/// Mean and unbiased variance (variance 0 for fewer than two values).
fn mean_var(x: &[f64]) -> (f64, f64) {
    let (m, s) = super::pref_loss::mean_std(x);
    (m, s * s)
}

/// Trains `policy` with PPO against the rewards (their weighted sum, paid at each completion's
/// last token); returns one row per step with TRL's metric names.
#[allow(clippy::too_many_arguments)]
pub fn train_ppo(
    op: &'static str,
    policy: &Model,
    value: Option<&Model>,
    reference: Option<&Model>,
    prompts: &[String],
    rewards: &[RewardFn],
    cfg: &PpoConfig,
    hooks: Hooks,
) -> Result<DataFrame> {
    cfg.check(op)?;
    require_policy(op, policy)?;
    check_rewards(op, rewards)?;
    if prompts.is_empty() {
        return Err(Error::invalid(op, "prompts", "at least one prompt", "none"));
    }
    let dev = policy.device().clone();
    let critic = match value {
        Some(v) => {
            if std::ptr::eq(v, policy) {
                return Err(Error::invalid(
                    op,
                    "value",
                    "a value model other than the policy (leave it out for a value head)",
                    "the policy",
                ));
            }
            if v.head() != crate::model::Head::Scalar || v.arch().family() == "bert" {
                return Err(Error::invalid(
                    op,
                    "value",
                    "a decoder (gpt2 or llama) with a 'scalar' head",
                    format!("a {} with head '{}'", v.arch().family(), v.head().name()),
                ));
            }
            if v.arch().vocab_size() != policy.arch().vocab_size() {
                return Err(Error::invalid(
                    op,
                    "value",
                    format!(
                        "the policy's vocabulary ({} tokens): it reads the policy's token ids",
                        policy.arch().vocab_size()
                    ),
                    format!("{} tokens", v.arch().vocab_size()),
                ));
            }
            Critic::Model(v)
        }
        None => {
            // Zero-initialised: values start at 0 and the head's first gradients do not
            // disturb the trunk.
            let h = policy.arch().hidden_size();
            Critic::Head {
                weight: Var::zeros((h, 1), DType::F32, &dev)?,
                bias: Var::zeros(1, DType::F32, &dev)?,
            }
        }
    };
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
    let pad = policy.tokenizer().map(|t| t.pad).unwrap_or(0);
    let mut trainable = policy.params().trainable();
    match &critic {
        Critic::Model(v) => trainable.extend(
            v.params()
                .trainable()
                .into_iter()
                .map(|(n, var)| (format!("value/{n}"), var)),
        ),
        Critic::Head { weight, bias } => {
            trainable.push(("v_head.weight".into(), weight.clone()));
            trainable.push(("v_head.bias".into(), bias.clone()));
        }
    }
    let (names, mut grads, mut opt) = optimizer_over(
        op,
        trainable,
        AdamWConfig {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..AdamWConfig::default()
        },
    )?;
    let fingerprint = Fingerprint {
        examples: prompts.len(),
        batch_size: cfg.prompts_per_step,
        grad_accum: cfg.num_ppo_epochs * cfg.num_mini_batches,
        seed: cfg.seed,
        total_steps: cfg.steps,
        trainable: names.len(),
    };
    let value_model = match &critic {
        Critic::Model(v) => Some(*v),
        Critic::Head { .. } => None,
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
            if let (Some(lora), Some(rng)) = (
                value_model.and_then(|v| v.lora_state()),
                state.value_lora_rng,
            ) {
                lora.set_rng_state(rng);
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
            value_lora_rng: value_model
                .and_then(|v| v.lora_state())
                .map(|l| l.rng_state()),
            optimizer_steps: None,
        };
        let also: Vec<(&str, &Model)> = value_model.map(|v| ("value", v)).into_iter().collect();
        checkpoint::save_with(
            dir,
            policy,
            &also,
            opt,
            &names,
            &state,
            cfg.keep_checkpoints,
        )?;
        Ok(())
    };
    hooks.progress.start(op, cfg.steps);
    hooks.progress.update(start, "");
    let began = Instant::now();
    let elapsed_before = rows.last().map(|r| r.elapsed_s).unwrap_or(0.0);
    let mut order = PromptOrder::new(cfg.seed, prompts.len());
    let result = (|| -> Result<()> {
        for step in start..cfg.steps {
            if hooks.interrupt.is_some_and(|i| i.is_requested()) {
                if step > start {
                    save(&opt, &rows, step, &kl)?;
                }
                return Err(Error::Interrupted);
            }
            let t0 = Instant::now();
            let picked = order.of_step(step, cfg.prompts_per_step);
            let batch_prompts: Vec<String> = picked.iter().map(|&i| prompts[i].clone()).collect();
            let gens = match policy.generate(
                &batch_prompts,
                &cfg.generate_options(step),
                &crate::Silent,
                hooks.interrupt,
            ) {
                Ok(g) => g,
                Err(Error::Interrupted) if step > start => {
                    save(&opt, &rows, step, &kl)?;
                    return Err(Error::Interrupted);
                }
                Err(e) => return Err(e),
            };
            let n = gens.len();
            let completions: Vec<String> = gens.iter().map(|g| g.completion.clone()).collect();
            let raw_scores = score_all(op, rewards, &batch_prompts, &completions)?;
            let scores: Vec<f64> = (0..n)
                .map(|i| {
                    let s: f64 = rewards
                        .iter()
                        .zip(&raw_scores)
                        .map(|(r, s)| r.weight * s[i])
                        .sum();
                    match cfg.missing_eos_penalty {
                        Some(p) if gens[i].finish_reason == "length" => s - p,
                        _ => s,
                    }
                })
                .collect();
            let mut seqs = Vec::with_capacity(n);
            let mut starts = Vec::with_capacity(n);
            for (j, g) in gens.iter().enumerate() {
                let mut s = prompt_ids[picked[j]].clone();
                starts.push(s.len());
                s.extend(&g.token_ids);
                seqs.push(s);
            }
            let mut ro = Rollout {
                seqs,
                starts,
                logps: Vec::with_capacity(n),
                values: Vec::with_capacity(n),
                advantages: Vec::new(),
                returns: Vec::new(),
            };
            // The rollout's log-probabilities, values and reference log-probabilities, in
            // eval mode and without gradient.
            let idx: Vec<usize> = (0..n).collect();
            let mut ref_rows: Vec<Vec<f32>> = Vec::with_capacity(n);
            for chunk in idx.chunks(cfg.batch_size) {
                let (s, st) = ro.pick(chunk);
                let p = lm_pass(policy, &s, &st, cfg.temperature, false, false)?;
                let v = critic.values(&p, &s, pad, false)?;
                ro.values.extend(rows_of(&v, &p.mask)?);
                ro.logps.extend(rows_of(&p.logps, &p.mask)?);
                if let Some(r) = reference {
                    let q = lm_pass(r, &s, &st, cfg.temperature, false, false)?;
                    ref_rows.extend(rows_of(&q.logps, &q.mask)?);
                }
            }
            // Rewards per token: −β·KL at every token, the score added at the last one.
            let beta = kl.value;
            let mut token_rewards: Vec<Vec<f64>> = Vec::with_capacity(n);
            let (mut seq_kl, mut non_score, mut neg_logp) = (0.0, 0.0, 0.0);
            for (i, (lp, score)) in ro.logps.iter().zip(&scores).enumerate() {
                let mut r: Vec<f64> = match ref_rows.get(i) {
                    Some(rf) => lp
                        .iter()
                        .zip(rf)
                        .map(|(&a, &b)| {
                            let k = token_kl(a, b, cfg.kl_estimator);
                            seq_kl += k;
                            -beta * k
                        })
                        .collect(),
                    None => vec![0.0; lp.len()],
                };
                non_score += r.iter().sum::<f64>();
                neg_logp -= lp.iter().map(|&x| x as f64).sum::<f64>();
                *r.last_mut().expect("a completion has at least one token") += score;
                token_rewards.push(r);
            }
            let n_f = n as f64;
            let (mean_kl, non_score, entropy_seq) = (seq_kl / n_f, non_score / n_f, neg_logp / n_f);
            if cfg.whiten_rewards {
                whiten_rows(&mut token_rewards, false);
            }
            let mut advantages = Vec::with_capacity(n);
            let mut returns = Vec::with_capacity(n);
            for (r, v) in token_rewards.iter().zip(&ro.values) {
                let v: Vec<f64> = v.iter().map(|&x| x as f64).collect();
                let (a, ret) = gae(r, &v, cfg.gamma, cfg.lam);
                advantages.push(a);
                returns.push(ret.into_iter().map(|x| x as f32).collect());
            }
            whiten_rows(&mut advantages, true);
            ro.advantages = advantages
                .into_iter()
                .map(|a| a.into_iter().map(|x| x as f32).collect())
                .collect();
            ro.returns = returns;

            // Updates: several epochs over the batch in seeded minibatch orders.
            let mb_size = n / cfg.num_mini_batches;
            let mut stats = Stats::default();
            let mut grad_norm = 0.0;
            let epoch_seed = Rng::derived(cfg.seed, 9000 + step as u64).next_u64();
            for epoch in 0..cfg.num_ppo_epochs {
                let mut perm: Vec<usize> = (0..n).collect();
                Rng::derived(epoch_seed, epoch as u64).shuffle(&mut perm);
                for mb in perm.chunks(mb_size) {
                    for chunk in mb.chunks(cfg.batch_size) {
                        let (s, st) = ro.pick(chunk);
                        let p = lm_pass(policy, &s, &st, cfg.temperature, true, true)?;
                        let v = critic.values(&p, &s, pad, true)?;
                        let old = unrows(&rows_at(&ro.logps, chunk), &p.mask)?;
                        let old_v = unrows(&rows_at(&ro.values, chunk), &p.mask)?;
                        let adv = unrows(&rows_at(&ro.advantages, chunk), &p.mask)?;
                        let ret = unrows(&rows_at(&ro.returns, chunk), &p.mask)?;
                        let pl = ppo_policy_loss(&p.logps, &old, &adv, &p.mask, cfg.cliprange)?;
                        let (vl, vclip) =
                            ppo_value_loss(&v, &old_v, &ret, &p.mask, cfg.cliprange_value)?;
                        let pg = pl.loss.to_scalar::<f32>()? as f64;
                        let vf = vl.to_scalar::<f32>()? as f64;
                        // TRL's accumulation: each micro-batch's masked means, weighted by
                        // its share of the minibatch.
                        let loss = ((&pl.loss + (vl * cfg.vf_coef)?)?
                            * (chunk.len() as f64 / mb.len() as f64))?;
                        grads.add(&loss)?;
                        stats.push(&pl, pg, vf, vclip, p.entropy, pg + cfg.vf_coef * vf);
                    }
                    grad_norm = grads.step(&mut opt, cfg.max_grad_norm)?;
                }
            }
            let loss_mean = stats.mean(|s| s.loss);
            if !loss_mean.is_finite() {
                return Err(Error::invalid(
                    op,
                    "lr",
                    "settings under which the loss stays finite",
                    format!("loss {loss_mean} at step {}", step + 1),
                ));
            }
            kl.update(mean_kl, n);
            let scores_mean = scores.iter().sum::<f64>() / n_f;
            let (ratio, ratio_var) =
                mean_var(&stats.items.iter().map(|s| s.ratio).collect::<Vec<_>>());
            let eos = gens.iter().filter(|g| g.finish_reason == "stop").count();
            let tokens: usize = gens.iter().map(|g| g.token_ids.len()).sum();
            let mut extra = vec![
                ("objective/kl".to_string(), mean_kl),
                ("objective/entropy".to_string(), entropy_seq),
                ("objective/non_score_reward".to_string(), non_score),
                ("objective/rlhf_reward".to_string(), non_score + scores_mean),
                ("objective/scores".to_string(), scores_mean),
            ];
            for (r, s) in rewards.iter().zip(&raw_scores) {
                extra.push((format!("rewards/{}", r.name), s.iter().sum::<f64>() / n_f));
            }
            extra.extend([
                (
                    "policy/approxkl_avg".to_string(),
                    stats.mean(|s| s.approxkl),
                ),
                (
                    "policy/clipfrac_avg".to_string(),
                    stats.mean(|s| s.clipfrac),
                ),
                ("loss/policy_avg".to_string(), stats.mean(|s| s.pg)),
                ("loss/value_avg".to_string(), stats.mean(|s| s.vf)),
                ("val/clipfrac_avg".to_string(), stats.mean(|s| s.vclip)),
                ("policy/entropy_avg".to_string(), stats.mean(|s| s.entropy)),
                ("val/ratio".to_string(), ratio),
                ("val/ratio_var".to_string(), ratio_var),
                ("val/num_eos_tokens".to_string(), eos as f64),
                ("beta".to_string(), beta),
                ("completions/mean_length".to_string(), tokens as f64 / n_f),
            ]);
            let dt = t0.elapsed().as_secs_f64();
            let done = step + 1;
            rows.push(Row {
                step: done,
                epoch: (done * cfg.prompts_per_step) as f64 / prompts.len() as f64,
                loss: loss_mean,
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
                .update(done, &format!("score {scores_mean:.3}"));
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

/// TRL's `masked_whiten` over every token of every row together.
fn whiten_rows(rows: &mut [Vec<f64>], shift_mean: bool) {
    let mut flat: Vec<f64> = rows.iter().flatten().copied().collect();
    whiten(&mut flat, shift_mean);
    let mut it = flat.into_iter();
    for r in rows.iter_mut() {
        for x in r.iter_mut() {
            *x = it.next().expect("same length");
        }
    }
}

/// Per-micro-batch diagnostics, averaged over a step as TRL's `*_stats` arrays are.
#[derive(Default)]
struct Stats {
    items: Vec<Item>,
}

struct Item {
    approxkl: f64,
    clipfrac: f64,
    ratio: f64,
    pg: f64,
    vf: f64,
    vclip: f64,
    entropy: f64,
    loss: f64,
}

impl Stats {
    fn push(
        &mut self,
        pl: &super::pref_loss::PolicyLoss,
        pg: f64,
        vf: f64,
        vclip: f64,
        entropy: f64,
        loss: f64,
    ) {
        self.items.push(Item {
            approxkl: pl.approxkl,
            clipfrac: pl.clipfrac,
            ratio: pl.ratio,
            pg,
            vf,
            vclip,
            entropy,
            loss,
        });
    }

    fn mean(&self, f: impl Fn(&Item) -> f64) -> f64 {
        self.items.iter().map(f).sum::<f64>() / self.items.len().max(1) as f64
    }
}
