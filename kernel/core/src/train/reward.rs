//! Reward models: a scalar head trained with the Bradley-Terry loss on preference pairs (TRL's
//! `RewardTrainer`), scoring of completions, and ensembles whose spread is an uncertainty.

use candle_core::{DType, Tensor};
use polars::prelude::*;

use super::data::BatchOutput;
use super::pairs::{encode_completion, pair_dataset, PairColumns, Pairs};
use super::pref_loss::bradley_terry_loss;
use super::trainer::{train_objective, Hooks, Objective, TrainConfig};
use crate::model::{Head, Inputs, Model, Padding};
use crate::{column_strings, Error, Result};

/// Pairs scored by a scalar head: the loss is Bradley-Terry's on `r(chosen) − r(rejected)`.
pub struct RewardObjective {
    pub pairs: Pairs,
}

fn require_scalar(op: &'static str, model: &Model) -> Result<()> {
    if model.head() != Head::Scalar {
        return Err(Error::invalid(
            op,
            "model",
            "a reward model (head = 'scalar')",
            format!("head '{}'", model.head().name()),
        ));
    }
    Ok(())
}

/// Scalar outputs (B,) of `seqs` under `model`.
fn scalar_outputs(model: &Model, seqs: &[Vec<u32>], train: bool) -> Result<Tensor> {
    let pad = model.tokenizer().map(|t| t.pad).unwrap_or(0);
    let x = Inputs::pad(seqs, pad, Padding::Right)?;
    let hidden = model.hidden(&x, None, train)?;
    Ok(model
        .head_logits(&hidden, &x)?
        .squeeze(1)?
        .to_dtype(DType::F32)?)
}

impl Objective for RewardObjective {
    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn loss(&self, model: &Model, idx: &[usize], train: bool) -> Result<BatchOutput> {
        let p = &self.pairs;
        // Chosen and rejected in one forward pass, as TRL concatenates them.
        let mut seqs: Vec<Vec<u32>> = idx.iter().map(|&i| p.chosen[i].clone()).collect();
        seqs.extend(idx.iter().map(|&i| p.rejected[i].clone()));
        let tokens = seqs.iter().map(Vec::len).sum();
        let r = scalar_outputs(model, &seqs, train)?;
        let n = idx.len();
        let (rc, rr) = (r.narrow(0, 0, n)?, r.narrow(0, n, n)?);
        let dev = r.device();
        let pick = |v: &Option<Vec<f32>>| -> Result<Option<Tensor>> {
            v.as_ref()
                .map(|v| {
                    let picked: Vec<f32> = idx.iter().map(|&i| v[i]).collect();
                    Ok(Tensor::from_vec(picked, n, dev)?)
                })
                .transpose()
        };
        let loss = bradley_terry_loss(
            &rc,
            &rr,
            pick(&p.margin)?.as_ref(),
            pick(&p.target)?.as_ref(),
        )?;
        let c: Vec<f32> = rc.detach().to_vec1()?;
        let j: Vec<f32> = rr.detach().to_vec1()?;
        let correct = c.iter().zip(&j).filter(|(a, b)| a > b).count();
        let all: Vec<f64> = c.iter().chain(&j).map(|&v| v as f64).collect();
        let margin = c.iter().zip(&j).map(|(a, b)| (a - b) as f64).sum::<f64>() / n as f64;
        Ok(BatchOutput {
            loss,
            correct,
            counted: n,
            tokens,
            metrics: vec![
                ("accuracy", correct as f64 / n as f64),
                ("margin", margin),
                (
                    "min_reward",
                    all.iter().copied().fold(f64::INFINITY, f64::min),
                ),
                ("mean_reward", all.iter().sum::<f64>() / all.len() as f64),
                (
                    "max_reward",
                    all.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                ),
            ],
        })
    }
}

/// Trains a reward model (head `scalar`) on the pairs of `data`; the metrics frame has TRL's
/// `accuracy, margin, min_reward, mean_reward, max_reward` beside the loop's columns.
#[allow(clippy::too_many_arguments)]
pub fn train_reward(
    model: &Model,
    data: &DataFrame,
    eval: Option<&DataFrame>,
    cols: &PairColumns,
    max_length: usize,
    cfg: &TrainConfig,
    hooks: Hooks,
) -> Result<DataFrame> {
    const OP: &str = "train.reward";
    crate::Options::check(cfg, OP)?;
    require_scalar(OP, model)?;
    no_aux(OP, cfg)?;
    let pairs = pair_dataset(OP, model, data, cols, max_length, false)?;
    let eval = eval
        .map(|e| pair_dataset(OP, model, e, cols, max_length, false))
        .transpose()?
        .map(|pairs| RewardObjective { pairs });
    train_objective(
        OP,
        model,
        &RewardObjective { pairs },
        eval.as_ref().map(|e| e as &dyn Objective),
        cfg,
        hooks,
    )
}

/// The auxiliary confidence loss belongs to classification; elsewhere it is an error.
pub(crate) fn no_aux(op: &'static str, cfg: &TrainConfig) -> Result<()> {
    if cfg.aux_coef > 0.0 {
        return Err(Error::invalid(
            op,
            "aux_coef",
            "0 (the auxiliary loss is for classification)",
            cfg.aux_coef,
        ));
    }
    Ok(())
}

/// The reward of each (prompt, completion) under a scalar-head model, tokenized as in training.
pub fn score(
    model: &Model,
    prompts: &[String],
    completions: &[String],
    max_length: usize,
    batch_size: usize,
) -> Result<Vec<f64>> {
    const OP: &str = "score";
    require_scalar(OP, model)?;
    crate::validate::positive_count(OP, "batch_size", batch_size)?;
    if prompts.len() != completions.len() {
        return Err(Error::invalid(
            OP,
            "completions",
            format!("{} completions (one per prompt)", prompts.len()),
            completions.len(),
        ));
    }
    let tok = model.require_tokenizer(OP)?;
    let mut out = Vec::with_capacity(prompts.len());
    let seqs: Vec<Vec<u32>> = prompts
        .iter()
        .zip(completions)
        .map(|(p, c)| Ok(encode_completion(tok, p, c, None, max_length)?.0))
        .collect::<Result<_>>()?;
    if let Some(row) = seqs.iter().position(Vec::is_empty) {
        return Err(Error::invalid(
            OP,
            "data",
            "non-empty texts",
            format!("an empty prompt and completion in row {row}"),
        ));
    }
    for chunk in seqs.chunks(batch_size) {
        let r: Vec<f32> = scalar_outputs(model, chunk, false)?.to_vec1()?;
        out.extend(r.into_iter().map(f64::from));
    }
    Ok(out)
}

/// `df` with the scores of one or more reward models: `score` (their mean) and, for an ensemble,
/// `score_std` (the spread, an uncertainty) and each model's `score_<i>` (1-based).
pub fn score_frame(
    models: &[&Model],
    df: &DataFrame,
    prompt: &str,
    completion: &str,
    max_length: usize,
    batch_size: usize,
) -> Result<DataFrame> {
    const OP: &str = "score";
    if models.is_empty() {
        return Err(Error::invalid(OP, "models", "at least one model", "none"));
    }
    let prompts = column_strings(OP, df, prompt)?;
    let completions = column_strings(OP, df, completion)?;
    let all: Vec<Vec<f64>> = models
        .iter()
        .map(|m| score(m, &prompts, &completions, max_length, batch_size))
        .collect::<Result<_>>()?;
    let n = prompts.len();
    let k = all.len() as f64;
    let mean: Vec<f64> = (0..n)
        .map(|i| all.iter().map(|s| s[i]).sum::<f64>() / k)
        .collect();
    let mut out = df.clone();
    let mut add = |name: String, v: Vec<f64>| -> Result<()> {
        out.with_column(Column::new(name.into(), v))
            .map_err(Error::polars(OP, "adding the scores"))?;
        Ok(())
    };
    add("score".into(), mean.clone())?;
    if all.len() > 1 {
        let std: Vec<f64> = (0..n)
            .map(|i| {
                let v: Vec<f64> = all.iter().map(|s| s[i]).collect();
                super::pref_loss::mean_std(&v).1
            })
            .collect();
        add("score_std".into(), std)?;
        for (j, s) in all.into_iter().enumerate() {
            add(format!("score_{}", j + 1), s)?;
        }
    }
    Ok(out)
}
