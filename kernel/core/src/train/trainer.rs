//! The training loop shared by SFT and classification: batches in a seeded order, gradient
//! accumulation, clipping, AdamW with a schedule, evaluation, progress, interrupts, checkpoints
//! and exact resumption.
//!
//! The data order depends only on (seed, epoch): micro-batch `i` of the run is batch
//! `i % batches_per_epoch` of epoch `i / batches_per_epoch`, in that epoch's permutation. The
//! position in the data is therefore a function of the step, and a resumed run needs only the
//! step, the optimizer state and the LoRA dropout generator to continue bit for bit.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::DType;
use polars::prelude::DataFrame;
use serde::Deserialize;

use super::checkpoint::{self, Fingerprint, State};
use super::data::{batch_loss, class_probs, AuxLoss, BatchOutput, Dataset, Target};
use super::grads::optimizer;
use super::loss::{aux_schedule_coef, logconf_threshold, AuxSchedule};
use super::metrics::{self, Row};
use super::optim::{AdamW, AdamWConfig};
use super::schedule::{Schedule, ScheduleKind};
use crate::model::Model;
use crate::{Error, Interrupt, Options, Progress, Result, Rng};

fn one() -> usize {
    1
}
fn eight() -> usize {
    8
}
fn lr_default() -> f64 {
    5e-5
}
fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}
fn eps() -> f64 {
    1e-8
}
fn clip() -> Option<f64> {
    Some(1.0)
}
fn linear() -> ScheduleKind {
    ScheduleKind::Linear
}
fn yes() -> bool {
    true
}
fn two() -> usize {
    2
}

/// Hyper-parameters of a run; the defaults are HF `TrainingArguments`' where it has one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the data (ignored when `max_steps` is set).
    #[serde(default = "one")]
    pub epochs: usize,
    /// Optimizer steps in all, overriding `epochs`.
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Examples per micro-batch.
    #[serde(default = "eight")]
    pub batch_size: usize,
    /// Micro-batches per optimizer step (their mean loss is what is minimised).
    #[serde(default = "one")]
    pub grad_accum: usize,
    #[serde(default = "lr_default")]
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "beta1")]
    pub beta1: f64,
    #[serde(default = "beta2")]
    pub beta2: f64,
    #[serde(default = "eps")]
    pub eps: f64,
    #[serde(default = "linear")]
    pub schedule: ScheduleKind,
    #[serde(default)]
    pub warmup_steps: usize,
    /// Clip the global gradient norm to this (none: no clipping).
    #[serde(default = "clip")]
    pub max_grad_norm: Option<f64>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Evaluate on the eval data every this many steps (and after the last one).
    #[serde(default)]
    pub eval_every: Option<usize>,
    #[serde(default)]
    pub checkpoint_every: Option<usize>,
    #[serde(default)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Checkpoints kept (the newest).
    #[serde(default = "two")]
    pub keep_checkpoints: usize,
    /// Continue from the newest checkpoint in `checkpoint_dir`, if there is one.
    #[serde(default)]
    pub resume: bool,
    /// Weak-to-strong's auxiliary confidence loss (classification only): the weight of the
    /// model's own hardened predictions in the target (0: off; the paper uses 0.5).
    #[serde(default)]
    pub aux_coef: f64,
    /// Fraction of training over which `aux_coef` ramps up from 0.
    #[serde(default = "tenth")]
    pub aux_warmup_frac: f64,
    /// How it ramps up: `reference` (openai/weak-to-strong's: `aux_coef × step_frac`, then a
    /// jump to `aux_coef`) or `linear` (continuous).
    #[serde(default)]
    pub aux_schedule: AuxSchedule,
}

fn tenth() -> f64 {
    0.1
}

impl Default for TrainConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

impl Options for TrainConfig {
    fn check(&self, op: &'static str) -> Result<()> {
        use crate::validate::{
            non_negative, positive, positive_count, positive_count_opt, probability, within,
        };
        positive_count(op, "batch_size", self.batch_size)?;
        positive_count(op, "grad_accum", self.grad_accum)?;
        positive_count(op, "epochs", self.epochs)?;
        positive_count(op, "keep_checkpoints", self.keep_checkpoints)?;
        positive_count_opt(op, "max_steps", self.max_steps)?;
        positive_count_opt(op, "eval_every", self.eval_every)?;
        positive_count_opt(op, "checkpoint_every", self.checkpoint_every)?;
        probability(op, "aux_coef", self.aux_coef)?;
        probability(op, "aux_warmup_frac", self.aux_warmup_frac)?;
        non_negative(op, "lr", self.lr)?;
        non_negative(op, "weight_decay", self.weight_decay)?;
        within(op, "beta1", self.beta1, 0.0, 1.0, true)?;
        within(op, "beta2", self.beta2, 0.0, 1.0, true)?;
        positive(op, "eps", self.eps)?;
        if let Some(n) = self.max_grad_norm {
            positive(op, "max_grad_norm", n)?;
        }
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

/// Where a running job reports and what stops it.
#[derive(Clone, Copy)]
pub struct Hooks<'a> {
    pub progress: &'a dyn Progress,
    pub interrupt: Option<&'a Interrupt>,
    /// Called after every optimizer step; an error stops training (as an interrupt does, with a
    /// checkpoint when checkpointing is on).
    pub on_step: Option<&'a StepHook<'a>>,
}

/// A per-step callback: sees each step's report; an error stops training.
pub type StepHook<'a> = dyn Fn(&StepReport) -> Result<()> + 'a;

/// What a step hook sees.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// Optimizer steps done (1-based) out of `total`.
    pub step: usize,
    pub total: usize,
    pub epoch: f64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub eval_loss: Option<f64>,
    pub eval_accuracy: Option<f64>,
}

/// What a trainer minimises, one micro-batch at a time: SFT and classification examples
/// ([`Supervised`]), preference pairs for a reward model or DPO. The loop (order, accumulation,
/// clipping, schedule, checkpoints, exact resumption) is the same for all of them.
pub trait Objective {
    /// Examples a micro-batch indexes into.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Called once per optimizer step with its micro-batches, before any of them runs.
    fn begin_step(&self, _model: &Model, _batches: &[Vec<usize>], _step_frac: f64) -> Result<()> {
        Ok(())
    }
    /// The mean loss of `idx` (with dropout when `train`), what was correct out of what was
    /// counted, the tokens seen, and named metrics (averaged over the step's micro-batches).
    fn loss(&self, model: &Model, idx: &[usize], train: bool) -> Result<BatchOutput>;
}

/// SFT or classification examples, with weak-to-strong's auxiliary loss when `aux_coef > 0`.
pub struct Supervised<'a> {
    pub data: &'a Dataset,
    pub aux_coef: f64,
    pub aux_warmup_frac: f64,
    pub aux_schedule: AuxSchedule,
    aux: std::cell::Cell<AuxLoss>,
}

impl<'a> Supervised<'a> {
    pub fn new(data: &'a Dataset) -> Self {
        Supervised {
            data,
            aux_coef: 0.0,
            aux_warmup_frac: 0.1,
            aux_schedule: AuxSchedule::default(),
            aux: std::cell::Cell::new(AuxLoss::OFF),
        }
    }

    fn with_aux(data: &'a Dataset, cfg: &TrainConfig) -> Self {
        Supervised {
            aux_coef: cfg.aux_coef,
            aux_warmup_frac: cfg.aux_warmup_frac,
            aux_schedule: cfg.aux_schedule,
            ..Supervised::new(data)
        }
    }
}

impl Objective for Supervised<'_> {
    fn len(&self) -> usize {
        self.data.examples.len()
    }

    fn begin_step(&self, model: &Model, batches: &[Vec<usize>], step_frac: f64) -> Result<()> {
        let coef = aux_schedule_coef(
            self.aux_schedule,
            self.aux_coef,
            self.aux_warmup_frac,
            step_frac,
        );
        self.aux.set(AuxLoss {
            coef,
            threshold: batch_threshold(model, self.data, batches, coef)?,
        });
        Ok(())
    }

    fn loss(&self, model: &Model, idx: &[usize], train: bool) -> Result<BatchOutput> {
        let aux = if train { self.aux.get() } else { AuxLoss::OFF };
        batch_loss(model, self.data, idx, train, aux)
    }
}

/// Mean loss and accuracy of `model` on `data`, in batches of `batch_size`, without training.
pub fn evaluate(model: &Model, data: &Dataset, batch_size: usize) -> Result<(f64, f64)> {
    evaluate_objective(model, &Supervised::new(data), batch_size)
}

/// Mean loss and accuracy of `model` on an objective's examples, without training.
pub fn evaluate_objective(
    model: &Model,
    data: &dyn Objective,
    batch_size: usize,
) -> Result<(f64, f64)> {
    let mut loss = 0.0;
    let mut weight = 0.0;
    let mut correct = 0;
    let mut counted = 0;
    let idx: Vec<usize> = (0..data.len()).collect();
    for chunk in idx.chunks(batch_size.max(1)) {
        let out = data.loss(model, chunk, false)?;
        // Weight each batch's mean by what it averaged over, so the result is the mean over
        // all tokens (SFT) or all examples (classification).
        let w = if out.counted > 0 {
            out.counted as f64
        } else {
            chunk.len() as f64
        };
        loss += out.loss.to_dtype(DType::F64)?.to_scalar::<f64>()? * w;
        weight += w;
        correct += out.correct;
        counted += out.counted;
    }
    Ok((
        loss / weight.max(1.0),
        correct as f64 / counted.max(1) as f64,
    ))
}

/// The examples of micro-batch `i` of the run.
fn micro_batch(
    i: usize,
    n: usize,
    cfg: &TrainConfig,
    order_cache: &mut Option<(usize, Vec<usize>)>,
) -> Vec<usize> {
    let per_epoch = n.div_ceil(cfg.batch_size);
    let epoch = i / per_epoch;
    let b = i % per_epoch;
    if order_cache.as_ref().map(|(e, _)| *e) != Some(epoch) {
        let mut order: Vec<usize> = (0..n).collect();
        if cfg.shuffle {
            Rng::derived(cfg.seed, 1000 + epoch as u64).shuffle(&mut order);
        }
        *order_cache = Some((epoch, order));
    }
    let order = &order_cache.as_ref().expect("just set").1;
    order[b * cfg.batch_size..((b + 1) * cfg.batch_size).min(n)].to_vec()
}

/// Trains `model` on `data`; returns the per-step metrics.
pub fn train(
    op: &'static str,
    model: &Model,
    data: &Dataset,
    eval: Option<&Dataset>,
    cfg: &TrainConfig,
    hooks: Hooks,
) -> Result<DataFrame> {
    cfg.check(op)?;
    if cfg.aux_coef > 0.0
        && data
            .examples
            .first()
            .is_some_and(|e| matches!(e.target, Target::Tokens(_)))
    {
        return Err(Error::invalid(
            op,
            "aux_coef",
            "0 for language-model training (the auxiliary loss is for classification)",
            cfg.aux_coef,
        ));
    }
    let eval = eval.map(Supervised::new);
    train_objective(
        op,
        model,
        &Supervised::with_aux(data, cfg),
        eval.as_ref().map(|e| e as &dyn Objective),
        cfg,
        hooks,
    )
}

/// Trains `model` on any objective; returns the per-step metrics (with the objective's own
/// metrics as extra columns).
pub fn train_objective(
    op: &'static str,
    model: &Model,
    data: &dyn Objective,
    eval: Option<&dyn Objective>,
    cfg: &TrainConfig,
    hooks: Hooks,
) -> Result<DataFrame> {
    cfg.check(op)?;
    if cfg.eval_every.is_some() && eval.is_none() {
        return Err(Error::invalid(
            op,
            "eval",
            "eval data when eval_every is set",
            "none",
        ));
    }
    if data.is_empty() {
        return Err(Error::invalid(op, "data", "at least one example", "none"));
    }
    let n = data.len();
    let per_epoch = n.div_ceil(cfg.batch_size);
    let total_steps = cfg
        .max_steps
        .unwrap_or_else(|| (cfg.epochs * per_epoch).div_ceil(cfg.grad_accum));
    let (names, mut grads, mut opt) = optimizer(
        op,
        model,
        AdamWConfig {
            lr: cfg.lr,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
        },
    )?;
    let schedule = Schedule {
        kind: cfg.schedule,
        peak_lr: cfg.lr,
        warmup_steps: cfg.warmup_steps,
        total_steps,
    };
    let fingerprint = Fingerprint {
        examples: n,
        batch_size: cfg.batch_size,
        grad_accum: cfg.grad_accum,
        seed: cfg.seed,
        total_steps,
        trainable: names.len(),
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut start = 0;
    if cfg.resume {
        let dir = cfg.checkpoint_dir.as_ref().expect("validated");
        if let Some((_, path)) = checkpoint::list(dir)?.pop() {
            let state = checkpoint::restore(&path, model, &mut opt, &names, &fingerprint)?;
            start = state.step;
            rows = state.metrics;
        }
    }
    let save = |opt: &AdamW, rows: &[Row], step: usize| -> Result<()> {
        let Some(dir) = &cfg.checkpoint_dir else {
            return Ok(());
        };
        let state = State {
            step,
            fingerprint: fingerprint.clone(),
            lora_rng: model.lora_state().map(|l| l.rng_state()),
            metrics: rows.to_vec(),
            kl_coef: None,
            value_lora_rng: None,
            optimizer_steps: None,
        };
        checkpoint::save(dir, model, opt, &names, &state, cfg.keep_checkpoints)?;
        Ok(())
    };
    hooks.progress.start(op, total_steps);
    hooks.progress.update(start, "");
    let began = Instant::now();
    let elapsed_before = rows.last().map(|r| r.elapsed_s).unwrap_or(0.0);
    let mut order = None;
    let result = (|| -> Result<()> {
        for step in start..total_steps {
            if let Some(i) = hooks.interrupt {
                if i.is_requested() {
                    if step > start {
                        save(&opt, &rows, step)?;
                    }
                    return Err(Error::Interrupted);
                }
            }
            let t0 = Instant::now();
            let lr = schedule.lr(step);
            opt.set_lr(lr);
            let mut loss_sum = 0.0;
            let mut tokens = 0;
            let batches: Vec<Vec<usize>> = (0..cfg.grad_accum)
                .map(|k| micro_batch(step * cfg.grad_accum + k, n, cfg, &mut order))
                .collect();
            data.begin_step(model, &batches, step as f64 / total_steps as f64)?;
            let mut extra: Vec<(String, f64)> = Vec::new();
            for idx in &batches {
                let out = data.loss(model, idx, true)?;
                for (k, (name, v)) in out.metrics.iter().enumerate() {
                    match extra.get_mut(k) {
                        Some(slot) => slot.1 += v / cfg.grad_accum as f64,
                        None => extra.push((name.to_string(), v / cfg.grad_accum as f64)),
                    }
                }
                let loss = (out.loss / cfg.grad_accum as f64)?;
                loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                tokens += out.tokens;
                grads.add(&loss)?;
            }
            if !loss_sum.is_finite() {
                return Err(Error::invalid(
                    op,
                    "lr",
                    "settings under which the loss stays finite",
                    format!("loss {loss_sum} at step {}", step + 1),
                ));
            }
            let grad_norm = grads.step(&mut opt, cfg.max_grad_norm)?;
            let dt = t0.elapsed().as_secs_f64();
            let done = step + 1;
            let (eval_loss, eval_accuracy) = match (cfg.eval_every, eval) {
                (Some(every), Some(e)) if done % every == 0 || done == total_steps => {
                    let (l, a) = evaluate_objective(model, e, cfg.batch_size)?;
                    (Some(l), Some(a))
                }
                _ => (None, None),
            };
            rows.push(Row {
                step: done,
                epoch: (done * cfg.grad_accum) as f64 / per_epoch as f64,
                loss: loss_sum,
                lr,
                grad_norm,
                tokens,
                tokens_per_s: tokens as f64 / dt.max(1e-9),
                elapsed_s: elapsed_before + began.elapsed().as_secs_f64(),
                eval_loss,
                eval_accuracy,
                extra,
            });
            hooks.progress.update(done, &format!("loss {loss_sum:.4}"));
            if let Some(f) = hooks.on_step {
                let row = rows.last().expect("pushed above");
                let report = StepReport {
                    step: done,
                    total: total_steps,
                    epoch: row.epoch,
                    loss: row.loss,
                    lr: row.lr,
                    grad_norm: row.grad_norm,
                    eval_loss: row.eval_loss,
                    eval_accuracy: row.eval_accuracy,
                };
                if let Err(e) = f(&report) {
                    if cfg.checkpoint_every.is_some() {
                        save(&opt, &rows, done)?;
                    }
                    return Err(e);
                }
            }
            if let Some(every) = cfg.checkpoint_every {
                if done % every == 0 || done == total_steps {
                    save(&opt, &rows, done)?;
                }
            }
        }
        Ok(())
    })();
    hooks.progress.finish();
    result?;
    metrics::frame(&rows)
}

/// The auxiliary loss's hardening threshold over a whole optimizer batch made of several
/// micro-batches, as the reference computes it (it stacks the micro-batches' logits before the
/// loss). `None` when one micro-batch is the batch (it computes its own) or the loss is off.
/// The predictions come from a forward pass without dropout, as the reference trains with
/// `model.eval()`; base models here have no dropout, so only LoRA dropout could differ.
fn batch_threshold(
    model: &Model,
    data: &Dataset,
    batches: &[Vec<usize>],
    coef: f64,
) -> Result<Option<f64>> {
    let two_classes = matches!(model.head(), crate::model::Head::Classify(2));
    if coef <= 0.0 || batches.len() < 2 || !two_classes {
        return Ok(None);
    }
    let (mut probs, mut weak) = (Vec::new(), Vec::new());
    for idx in batches {
        let (p, w) = class_probs(model, data, idx)?;
        probs.extend(p);
        weak.extend(w);
    }
    Ok(Some(logconf_threshold(&probs, &weak)))
}
