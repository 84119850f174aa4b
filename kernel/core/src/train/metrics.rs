//! Per-step training metrics and their DataFrame.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One optimizer step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub step: usize,
    /// Fraction of passes over the data done.
    pub epoch: f64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Tokens (SFT: counted completion tokens; classification: input tokens) in this step.
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    pub eval_loss: Option<f64>,
    pub eval_accuracy: Option<f64>,
    /// The objective's own metrics (TRL's names: `rewards/chosen`, `accuracy`, ...).
    #[serde(default)]
    pub extra: Vec<(String, f64)>,
}

/// The rows as a DataFrame: `step, epoch, loss, lr, grad_norm, tokens, tokens_per_s, elapsed_s,
/// eval_loss, eval_accuracy` (the eval columns are null where no evaluation ran), then the
/// objective's own metrics in the order it reports them.
pub fn frame(rows: &[Row]) -> Result<DataFrame> {
    let col = |name: &str, v: Vec<f64>| Column::new(name.into(), v);
    let extra: Vec<Column> = rows
        .first()
        .map(|r| {
            r.extra
                .iter()
                .enumerate()
                .map(|(k, (name, _))| {
                    let v: Vec<Option<f64>> =
                        rows.iter().map(|r| r.extra.get(k).map(|e| e.1)).collect();
                    Column::new(name.as_str().into(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut columns = vec![
        Column::new(
            "step".into(),
            rows.iter().map(|r| r.step as i64).collect::<Vec<_>>(),
        ),
        col("epoch", rows.iter().map(|r| r.epoch).collect()),
        col("loss", rows.iter().map(|r| r.loss).collect()),
        col("lr", rows.iter().map(|r| r.lr).collect()),
        col("grad_norm", rows.iter().map(|r| r.grad_norm).collect()),
        Column::new(
            "tokens".into(),
            rows.iter().map(|r| r.tokens as i64).collect::<Vec<_>>(),
        ),
        col(
            "tokens_per_s",
            rows.iter().map(|r| r.tokens_per_s).collect(),
        ),
        col("elapsed_s", rows.iter().map(|r| r.elapsed_s).collect()),
        Column::new(
            "eval_loss".into(),
            rows.iter().map(|r| r.eval_loss).collect::<Vec<_>>(),
        ),
        Column::new(
            "eval_accuracy".into(),
            rows.iter().map(|r| r.eval_accuracy).collect::<Vec<_>>(),
        ),
    ];
    columns.extend(extra);
    DataFrame::new_infer_height(columns)
        .map_err(Error::polars("train", "building the metrics table"))
}
