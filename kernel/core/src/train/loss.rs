//! Training losses over model outputs, in f32 whatever the model's dtype.

use candle_core::{DType, Tensor, D};

use crate::nn::{cross_entropy, log_softmax_last_dim};
use crate::{Error, Result};

/// Label value that contributes no loss (PyTorch's `ignore_index`).
pub const IGNORE: i64 = -100;

/// Next-token loss: logits (B, T, V) at position t predict `labels[t + 1]`; labels equal to
/// [`IGNORE`] are skipped; the mean is over the counted tokens (HF's `ForCausalLMLoss`).
pub fn lm_loss(logits: &Tensor, labels: &[i64]) -> Result<Tensor> {
    let (b, t, v) = logits.dims3()?;
    if labels.len() != b * t {
        return Err(Error::invalid(
            "lm_loss",
            "labels",
            format!("{} labels", b * t),
            labels.len(),
        ));
    }
    if t < 2 {
        return Err(Error::invalid(
            "lm_loss",
            "logits",
            "sequences of at least 2 tokens",
            t,
        ));
    }
    let shifted: Vec<i64> = (0..b)
        .flat_map(|r| labels[r * t + 1..(r + 1) * t].iter().copied())
        .collect();
    if shifted.iter().all(|&l| l == IGNORE) {
        return Err(Error::invalid(
            "lm_loss",
            "labels",
            "at least one token to predict",
            "only ignored labels",
        ));
    }
    let logits = logits
        .narrow(1, 0, t - 1)?
        .reshape((b * (t - 1), v))?
        .to_dtype(DType::F32)?;
    let targets = Tensor::from_vec(shifted, b * (t - 1), logits.device())?;
    cross_entropy(&logits, &targets, Some(IGNORE))
}

/// Cross-entropy of logits (B, C) against class indices.
pub fn class_loss(logits: &Tensor, labels: &[u32]) -> Result<Tensor> {
    let targets = Tensor::from_slice(labels, labels.len(), logits.device())?;
    cross_entropy(&logits.to_dtype(DType::F32)?, &targets, None)
}

/// Cross-entropy against soft targets (B, C), each row a probability distribution:
/// `mean_b(-Σ_c p_bc log softmax(z)_bc)` (PyTorch's `cross_entropy` with probability targets).
pub fn soft_class_loss(logits: &Tensor, probs: &Tensor) -> Result<Tensor> {
    let logp = log_softmax_last_dim(&logits.to_dtype(DType::F32)?)?;
    let b = logp.dim(0)? as f64;
    Ok(((logp * probs.to_dtype(DType::F32)?)?
        .sum(D::Minus1)?
        .sum_all()?
        .neg()?
        / b)?)
}
