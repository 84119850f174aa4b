//! Direct preference optimisation (Rafailov et al. 2023) and its IPO and hinge variants, as TRL's
//! `DPOTrainer`: the reference's log-probabilities are computed once, before training.

use candle_core::Tensor;
use polars::prelude::DataFrame;
use serde::Deserialize;

use super::data::BatchOutput;
use super::pairs::{pair_dataset, sequence_logps, PairColumns, Pairs};
use super::pref_loss::{dpo_loss, DpoLoss};
use super::reward::no_aux;
use super::trainer::{train_objective, Hooks, Objective, TrainConfig};
use crate::model::{Head, Model};
use crate::{Error, Options, Result};

fn beta() -> f64 {
    0.1
}

/// DPO's own settings (TRL's names and defaults).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpoConfig {
    /// Strength of the implicit KL leash.
    #[serde(default = "beta")]
    pub beta: f64,
    #[serde(default)]
    pub loss: DpoLoss,
    /// Conservative DPO's ε: the chance a preference label is flipped (sigmoid loss only).
    #[serde(default)]
    pub label_smoothing: f64,
}

impl Default for DpoConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

impl Options for DpoConfig {
    fn check(&self, op: &'static str) -> Result<()> {
        crate::validate::positive(op, "beta", self.beta)?;
        crate::validate::within(op, "label_smoothing", self.label_smoothing, 0.0, 0.5, true)?;
        if self.label_smoothing > 0.0 && self.loss != DpoLoss::Sigmoid {
            return Err(Error::invalid(
                op,
                "label_smoothing",
                "0 unless loss = 'sigmoid'",
                self.label_smoothing,
            ));
        }
        Ok(())
    }
}

/// Pairs with the reference's summed log-probabilities of each side.
pub struct DpoObjective {
    pub pairs: Pairs,
    pub ref_chosen: Vec<f32>,
    pub ref_rejected: Vec<f32>,
    pub config: DpoConfig,
}

impl DpoObjective {
    /// Computes the reference log-probabilities with `reference` (no gradient, no dropout).
    pub fn new(
        reference: &Model,
        pairs: Pairs,
        config: DpoConfig,
        batch_size: usize,
    ) -> Result<Self> {
        let mut ref_chosen = Vec::with_capacity(pairs.len());
        let mut ref_rejected = Vec::with_capacity(pairs.len());
        let idx: Vec<usize> = (0..pairs.len()).collect();
        for chunk in idx.chunks(batch_size.max(1)) {
            let (c, r) = both_sides(reference, &pairs, chunk, false, config.loss)?;
            ref_chosen.extend(c.detach().to_vec1::<f32>()?);
            ref_rejected.extend(r.detach().to_vec1::<f32>()?);
        }
        Ok(DpoObjective {
            pairs,
            ref_chosen,
            ref_rejected,
            config,
        })
    }
}

/// Log-probabilities of the chosen and rejected completions of `idx`, in one pass: summed over
/// tokens, or averaged for IPO (TRL divides IPO's log-probabilities by the completion length).
fn both_sides(
    model: &Model,
    p: &Pairs,
    idx: &[usize],
    train: bool,
    kind: DpoLoss,
) -> Result<(Tensor, Tensor)> {
    let mut seqs: Vec<Vec<u32>> = idx.iter().map(|&i| p.chosen[i].clone()).collect();
    seqs.extend(idx.iter().map(|&i| p.rejected[i].clone()));
    let mut starts: Vec<usize> = idx.iter().map(|&i| p.chosen_start[i]).collect();
    starts.extend(idx.iter().map(|&i| p.rejected_start[i]));
    let (mut lp, counts) = sequence_logps(model, &seqs, &starts, train)?;
    if kind == DpoLoss::Ipo {
        let len: Vec<f32> = counts.iter().map(|&c| c.max(1) as f32).collect();
        lp = lp.div(&Tensor::from_vec(len, counts.len(), lp.device())?)?;
    }
    let n = idx.len();
    Ok((lp.narrow(0, 0, n)?, lp.narrow(0, n, n)?))
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

impl Objective for DpoObjective {
    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn loss(&self, model: &Model, idx: &[usize], train: bool) -> Result<BatchOutput> {
        let (pc, pr) = both_sides(model, &self.pairs, idx, train, self.config.loss)?;
        let dev = pc.device();
        let pick = |v: &[f32]| {
            Tensor::from_vec(
                idx.iter().map(|&i| v[i]).collect::<Vec<f32>>(),
                idx.len(),
                dev,
            )
        };
        let (rc, rr) = (pick(&self.ref_chosen)?, pick(&self.ref_rejected)?);
        let c = &self.config;
        let out = dpo_loss(&pc, &pr, &rc, &rr, c.beta, c.loss, c.label_smoothing)?;
        let correct = out
            .chosen_rewards
            .iter()
            .zip(&out.rejected_rewards)
            .filter(|(a, b)| a > b)
            .count();
        let margins: Vec<f32> = out
            .chosen_rewards
            .iter()
            .zip(&out.rejected_rewards)
            .map(|(a, b)| a - b)
            .collect();
        let tokens = idx
            .iter()
            .map(|&i| self.pairs.chosen[i].len() + self.pairs.rejected[i].len())
            .sum();
        let n = idx.len();
        Ok(BatchOutput {
            metrics: vec![
                ("rewards/chosen", mean(&out.chosen_rewards)),
                ("rewards/rejected", mean(&out.rejected_rewards)),
                ("rewards/accuracies", correct as f64 / n as f64),
                ("rewards/margins", mean(&margins)),
                ("logps/chosen", mean(&pc.detach().to_vec1::<f32>()?)),
                ("logps/rejected", mean(&pr.detach().to_vec1::<f32>()?)),
            ],
            loss: out.loss,
            correct,
            counted: n,
            tokens,
        })
    }
}

/// Trains a policy (head `lm`) with DPO on the pairs of `data`. The reference is `reference`
/// or, by default, the policy as it is before training (its log-probabilities are computed
/// once). The metrics frame has TRL's `rewards/*` and `logps/*` columns.
#[allow(clippy::too_many_arguments)]
pub fn train_dpo(
    model: &Model,
    reference: Option<&Model>,
    data: &DataFrame,
    eval: Option<&DataFrame>,
    cols: &PairColumns,
    max_length: usize,
    dpo: &DpoConfig,
    cfg: &TrainConfig,
    hooks: Hooks,
) -> Result<DataFrame> {
    const OP: &str = "train.dpo";
    cfg.check(OP)?;
    dpo.check(OP)?;
    no_aux(OP, cfg)?;
    for (arg, m) in [("model", Some(model)), ("ref", reference)] {
        if let Some(m) = m {
            if m.head() != Head::Lm {
                return Err(Error::invalid(
                    OP,
                    arg,
                    "a policy with an 'lm' head",
                    format!("head '{}'", m.head().name()),
                ));
            }
        }
    }
    if cols.margin.is_some() || cols.tie.is_some() {
        return Err(Error::invalid(
            OP,
            if cols.margin.is_some() {
                "margin"
            } else {
                "tie"
            },
            "no margin or tie column (they belong to sw.train.reward)",
            "a column",
        ));
    }
    let reference = reference.unwrap_or(model);
    let build = |df: &DataFrame| -> Result<DpoObjective> {
        let pairs = pair_dataset(OP, model, df, cols, max_length, true)?;
        DpoObjective::new(reference, pairs, dpo.clone(), cfg.batch_size)
    };
    let train = build(data)?;
    let eval = eval.map(build).transpose()?;
    train_objective(
        OP,
        model,
        &train,
        eval.as_ref().map(|e| e as &dyn Objective),
        cfg,
        hooks,
    )
}
