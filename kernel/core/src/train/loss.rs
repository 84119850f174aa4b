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

/// The threshold at which weak-to-strong's auxiliary loss hardens two-class predictions: the
/// quantile of P(class 0) over the batch (linear interpolation, as `torch.quantile`) at the
/// weak labels' mean P(class 1), so the hardened labels keep the weak labels' class balance.
/// `probs` are the strong model's softmax outputs (B × 2, row-major), `weak` the soft labels.
/// The reference computes it once per optimizer batch (the logits of all its micro-batches
/// are stacked before `logconf_loss_fn` is called), and so does the trainer.
pub fn logconf_threshold(probs: &[f32], weak: &[f32]) -> f64 {
    let b = probs.len() / 2;
    let mean_weak1 = (0..b).map(|i| f64::from(weak[i * 2 + 1])).sum::<f64>() / b as f64;
    let mut p0: Vec<f64> = (0..b).map(|i| f64::from(probs[i * 2])).collect();
    p0.sort_by(f64::total_cmp);
    let pos = mean_weak1 * (b - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    p0[lo] + (p0[hi] - p0[lo]) * (pos - lo as f64)
}

/// The target of weak-to-strong training's auxiliary confidence loss (Burns et al. 2023,
/// openai/weak-to-strong `logconf_loss_fn`): `(1 − coef)·weak + coef·hardened`, where
/// `hardened` is the strong model's own predictions made hard. With two classes, as in the
/// reference, a prediction is class 0 when its P(class 0) is at least `threshold`
/// ([`logconf_threshold`]; `None`: computed over these rows). The reference asserts two
/// classes; with more, this extension hardens by the argmax (no class-balance constraint).
/// `probs` are the strong model's softmax outputs (B × C, row-major), `weak` the soft labels.
pub fn logconf_target(
    probs: &[f32],
    weak: &[f32],
    classes: usize,
    coef: f64,
    threshold: Option<f64>,
) -> Vec<f32> {
    let b = probs.len() / classes;
    let mut hard = vec![0f32; probs.len()];
    if classes == 2 {
        let threshold = threshold.unwrap_or_else(|| logconf_threshold(probs, weak));
        for i in 0..b {
            let zero = f64::from(probs[i * 2]) >= threshold;
            hard[i * 2] = f32::from(u8::from(zero));
            hard[i * 2 + 1] = f32::from(u8::from(!zero));
        }
    } else {
        for (row, out) in probs.chunks(classes).zip(hard.chunks_mut(classes)) {
            let best = row
                .iter()
                .enumerate()
                .fold(0, |best, (i, &v)| if v > row[best] { i } else { best });
            out[best] = 1.0;
        }
    }
    let c = coef as f32;
    weak.iter()
        .zip(&hard)
        .map(|(w, h)| w * (1.0 - c) + h * c)
        .collect()
}

/// How the auxiliary loss's weight reaches `aux_coef`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuxSchedule {
    /// openai/weak-to-strong's, kept as the faithful default: `coef = aux_coef × step_frac`
    /// while `step_frac ≤ warmup_frac` (so it rises to `warmup_frac × aux_coef`, 0.05 with the
    /// defaults), then `aux_coef` (a jump, from 0.05 to 0.5).
    #[default]
    Reference,
    /// A true linear ramp: `aux_coef × step_frac / warmup_frac` until `warmup_frac`, then
    /// `aux_coef` (continuous).
    Linear,
}

impl AuxSchedule {
    pub fn name(self) -> &'static str {
        match self {
            AuxSchedule::Reference => "reference",
            AuxSchedule::Linear => "linear",
        }
    }
}

/// The coefficient of the auxiliary loss at `step_frac` of training (see [`AuxSchedule`]).
pub fn logconf_coef(aux_coef: f64, warmup_frac: f64, step_frac: f64) -> f64 {
    aux_schedule_coef(AuxSchedule::Reference, aux_coef, warmup_frac, step_frac)
}

/// The coefficient of the auxiliary loss at `step_frac` of training under `schedule`.
pub fn aux_schedule_coef(
    schedule: AuxSchedule,
    aux_coef: f64,
    warmup_frac: f64,
    step_frac: f64,
) -> f64 {
    if step_frac > warmup_frac {
        return aux_coef;
    }
    aux_coef
        * match schedule {
            AuxSchedule::Reference => step_frac,
            // warmup_frac = 0 with step_frac = 0: no ramp at all.
            AuxSchedule::Linear if warmup_frac == 0.0 => 1.0,
            AuxSchedule::Linear => step_frac / warmup_frac,
        }
}
