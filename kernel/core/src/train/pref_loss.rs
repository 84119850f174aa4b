//! The formulas of learning from preferences, as TRL and lm-human-preferences write them: the
//! Bradley-Terry reward loss, DPO and its variants, the KL estimators, PPO's clipped policy and
//! value losses, GAE, advantage whitening, the group advantages of RLOO and GRPO, and the
//! adaptive KL controller. Tensors carry gradients (computed in f32); advantages and returns are
//! targets, so they are plain numbers.
//!
//! `kernel/core/tests/preference_parity.rs` checks every one, and the gradients of the tensor
//! ones, against the same formulas in PyTorch (`tests/parity/make_preference_fixtures.py`).

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `log σ(x)`, stable for large |x|: `min(x, 0) − log(1 + e^{−|x|})`.
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let neg_abs = x.abs()?.neg()?;
    let soft = (neg_abs.exp()? + 1.0)?.log()?;
    Ok((x.minimum(0.0)? - soft)?)
}

/// Bradley-Terry loss of a reward model: the mean of
/// `−[p·log σ(d) + (1 − p)·log σ(−d)]` with `d = r_chosen − r_rejected − margin`.
/// `p` is 1 for a strict preference (TRL's `−log σ(d)`), 0.5 for a tie; `margin` is TRL's
/// optional per-pair margin.
pub fn bradley_terry_loss(
    chosen: &Tensor,
    rejected: &Tensor,
    margin: Option<&Tensor>,
    target: Option<&Tensor>,
) -> Result<Tensor> {
    let mut d = (chosen.to_dtype(DType::F32)? - rejected.to_dtype(DType::F32)?)?;
    if let Some(m) = margin {
        d = (d - m.to_dtype(DType::F32)?)?;
    }
    let win = log_sigmoid(&d)?;
    let per = match target {
        None => win.neg()?,
        Some(p) => {
            let p = p.to_dtype(DType::F32)?;
            let lose = log_sigmoid(&d.neg()?)?;
            ((win * &p)? + (lose * p.affine(-1.0, 1.0)?)?)?.neg()?
        }
    };
    Ok(per.mean_all()?)
}

/// Which DPO objective.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DpoLoss {
    /// Rafailov et al.: `−log σ(β·h)`, with conservative label smoothing ε:
    /// `−(1 − ε)·log σ(β·h) − ε·log σ(−β·h)`.
    #[default]
    Sigmoid,
    /// Azar et al.'s IPO: `(h − 1/(2β))²`.
    Ipo,
    /// SLiC's hinge: `max(0, 1 − β·h)`.
    Hinge,
}

impl DpoLoss {
    pub fn name(self) -> &'static str {
        match self {
            DpoLoss::Sigmoid => "sigmoid",
            DpoLoss::Ipo => "ipo",
            DpoLoss::Hinge => "hinge",
        }
    }
}

/// What a DPO step computes: the mean loss and, detached, the implicit rewards
/// `β·(log π − log π_ref)` of each chosen and rejected completion.
pub struct DpoOutput {
    pub loss: Tensor,
    pub chosen_rewards: Vec<f32>,
    pub rejected_rewards: Vec<f32>,
}

/// The DPO loss from the policy's and the reference's summed log-probabilities of each chosen
/// and rejected completion (each (B,)); `h = (log π(y_w) − log π(y_l)) − (log π_ref(y_w) −
/// log π_ref(y_l))`, as TRL's `dpo_loss`.
pub fn dpo_loss(
    policy_chosen: &Tensor,
    policy_rejected: &Tensor,
    ref_chosen: &Tensor,
    ref_rejected: &Tensor,
    beta: f64,
    kind: DpoLoss,
    label_smoothing: f64,
) -> Result<DpoOutput> {
    let f = |t: &Tensor| t.to_dtype(DType::F32);
    let (pc, pr, rc, rr) = (
        f(policy_chosen)?,
        f(policy_rejected)?,
        f(ref_chosen)?,
        f(ref_rejected)?,
    );
    let h = ((&pc - &pr)? - (&rc - &rr)?)?;
    let per = match kind {
        DpoLoss::Sigmoid => {
            let bh = (&h * beta)?;
            let win = log_sigmoid(&bh)?;
            let lose = log_sigmoid(&bh.neg()?)?;
            ((win * (1.0 - label_smoothing))? + (lose * label_smoothing)?)?.neg()?
        }
        DpoLoss::Ipo => (h - 1.0 / (2.0 * beta))?.sqr()?,
        DpoLoss::Hinge => (h * beta)?.affine(-1.0, 1.0)?.relu()?,
    };
    let chosen_rewards = ((pc - rc)?.detach() * beta)?.to_vec1()?;
    let rejected_rewards = ((pr - rr)?.detach() * beta)?.to_vec1()?;
    Ok(DpoOutput {
        loss: per.mean_all()?,
        chosen_rewards,
        rejected_rewards,
    })
}

/// KL estimators of Schulman's note, per token, from `Δ = log π_ref − log π` on samples of π:
/// k1 = −Δ (unbiased, can be negative), k3 = e^Δ − Δ − 1 (unbiased, never negative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    K1,
    #[default]
    K3,
}

/// The per-token KL estimate (same shape as the inputs).
pub fn kl_estimate(logp: &Tensor, ref_logp: &Tensor, kind: KlEstimator) -> Result<Tensor> {
    let delta = (ref_logp.to_dtype(DType::F32)? - logp.to_dtype(DType::F32)?)?;
    Ok(match kind {
        KlEstimator::K1 => delta.neg()?,
        KlEstimator::K3 => ((delta.exp()? - &delta)? - 1.0)?,
    })
}

/// Mean of `x` over the positions where `mask` is 1 (TRL's `masked_mean`).
pub fn masked_mean(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?;
    let n = mask.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64;
    Ok(((x.to_dtype(DType::F32)? * mask)?.sum_all()? / n)?)
}

/// PPO's clipped surrogate and its diagnostics.
pub struct PolicyLoss {
    pub loss: Tensor,
    /// Share of tokens whose clipped term was the larger (`policy/clipfrac_avg`).
    pub clipfrac: f64,
    /// `½·mean((log π − log π_old)²)` (`policy/approxkl_avg`).
    pub approxkl: f64,
    /// Mean probability ratio (`val/ratio`).
    pub ratio: f64,
}

/// `masked_mean(max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε)))` with `ρ = exp(log π − log π_old)`
/// (TRL's PPO trainer; all (B, T)).
pub fn ppo_policy_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    advantages: &Tensor,
    mask: &Tensor,
    clip: f64,
) -> Result<PolicyLoss> {
    let diff = (logp.to_dtype(DType::F32)? - old_logp.to_dtype(DType::F32)?)?;
    let ratio = diff.exp()?;
    let adv = advantages.to_dtype(DType::F32)?;
    let pg1 = (adv.neg()? * &ratio)?;
    let pg2 = (adv.neg()? * ratio.clamp(1.0 - clip, 1.0 + clip)?)?;
    let loss = masked_mean(&pg1.maximum(&pg2)?, mask)?;
    let scalar = |t: Tensor| -> Result<f64> { Ok(t.to_scalar::<f32>()? as f64) };
    let clipped = pg2.gt(&pg1)?.to_dtype(DType::F32)?.detach();
    Ok(PolicyLoss {
        loss,
        clipfrac: scalar(masked_mean(&clipped, mask)?)?,
        approxkl: 0.5 * scalar(masked_mean(&diff.detach().sqr()?, mask)?)?,
        ratio: scalar(masked_mean(&ratio.detach(), mask)?)?,
    })
}

/// PPO's clipped value loss: `½·masked_mean(max((v − R)², (clip(v, v_old ± ε) − R)²))`, and the
/// share of tokens where the clipped term was the larger (`val/clipfrac_avg`).
pub fn ppo_value_loss(
    values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    mask: &Tensor,
    clip: f64,
) -> Result<(Tensor, f64)> {
    let v = values.to_dtype(DType::F32)?;
    let old = old_values.to_dtype(DType::F32)?;
    let ret = returns.to_dtype(DType::F32)?;
    let clipped = v.maximum(&(&old - clip)?)?.minimum(&(&old + clip)?)?;
    let l1 = (&v - &ret)?.sqr()?;
    let l2 = (clipped - &ret)?.sqr()?;
    let loss = (masked_mean(&l1.maximum(&l2)?, mask)? * 0.5)?;
    let frac = masked_mean(&l2.gt(&l1)?.to_dtype(DType::F32)?.detach(), mask)?;
    Ok((loss, frac.to_scalar::<f32>()? as f64))
}

/// Generalised advantage estimation over one sequence of `n` real tokens (rewards and values
/// per token): `δ_t = r_t + γ·V_{t+1} − V_t`, `A_t = δ_t + γλ·A_{t+1}`, `V_n = 0`. Returns
/// (advantages, returns = advantages + values).
pub fn gae(rewards: &[f64], values: &[f64], gamma: f64, lam: f64) -> (Vec<f64>, Vec<f64>) {
    let n = rewards.len();
    let mut adv = vec![0.0; n];
    let mut last = 0.0;
    for t in (0..n).rev() {
        let next = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + gamma * next - values[t];
        last = delta + gamma * lam * last;
        adv[t] = last;
    }
    let ret = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, ret)
}

/// TRL's `masked_whiten` over all values: `(x − mean)/√(var + 1e-8)` with the unbiased
/// variance, adding the mean back when `shift_mean` is false.
pub fn whiten(x: &mut [f64], shift_mean: bool) {
    let n = x.len();
    if n < 2 {
        return;
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let scale = 1.0 / (var + 1e-8).sqrt();
    for v in x.iter_mut() {
        *v = (*v - mean) * scale + if shift_mean { 0.0 } else { mean };
    }
}

/// RLOO's leave-one-out advantage within each group of `k` consecutive rewards:
/// `r_i − mean of the other k − 1`.
pub fn rloo_advantages(rewards: &[f64], k: usize) -> Result<Vec<f64>> {
    group_check("rloo", rewards, k, 2)?;
    Ok(rewards
        .chunks(k)
        .flat_map(|g| {
            let sum: f64 = g.iter().sum();
            g.iter()
                .map(move |r| r - (sum - r) / (k - 1) as f64)
                .collect::<Vec<_>>()
        })
        .collect())
}

/// GRPO's advantage within each group of `k` consecutive rewards: `(r_i − mean)/(std + 1e-4)`
/// with the unbiased std (TRL; `scale = false` leaves out the division, as Dr. GRPO does).
pub fn grpo_advantages(rewards: &[f64], k: usize, scale: bool) -> Result<Vec<f64>> {
    group_check("grpo", rewards, k, 2)?;
    Ok(rewards
        .chunks(k)
        .flat_map(|g| {
            let (mean, std) = mean_std(g);
            g.iter()
                .map(move |r| {
                    if scale {
                        (r - mean) / (std + 1e-4)
                    } else {
                        r - mean
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Mean and unbiased standard deviation (0 for fewer than two values).
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n.max(1.0);
    if x.len() < 2 {
        return (mean, 0.0);
    }
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn group_check(op: &'static str, rewards: &[f64], k: usize, min: usize) -> Result<()> {
    if k < min || !rewards.len().is_multiple_of(k) {
        return Err(Error::invalid(
            op,
            "num_generations",
            format!(
                "at least {min} samples per prompt, dividing the {} rewards",
                rewards.len()
            ),
            k,
        ));
    }
    Ok(())
}

/// The KL coefficient β: fixed, or lm-human-preferences' adaptive controller
/// `e = clip(KL/target − 1, −0.2, 0.2)`, `β ← β·(1 + e·n_steps/horizon)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KlController {
    pub value: f64,
    /// `(target, horizon)` when adaptive.
    pub adaptive: Option<(f64, f64)>,
}

impl KlController {
    pub fn fixed(coef: f64) -> Self {
        KlController {
            value: coef,
            adaptive: None,
        }
    }

    pub fn adaptive(init: f64, target: f64, horizon: f64) -> Self {
        KlController {
            value: init,
            adaptive: Some((target, horizon)),
        }
    }

    /// Moves β after a batch of `n_steps` samples whose mean KL was `kl`.
    pub fn update(&mut self, kl: f64, n_steps: usize) {
        if let Some((target, horizon)) = self.adaptive {
            let e = (kl / target - 1.0).clamp(-0.2, 0.2);
            self.value *= 1.0 + e * n_steps as f64 / horizon;
        }
    }
}

/// Best-of-n's KL from the base policy, analytically: `log n − (n − 1)/n` (Stiennon et al.).
pub fn best_of_n_kl(n: usize) -> f64 {
    let n = n.max(1) as f64;
    n.ln() - (n - 1.0) / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gae_with_lambda_one_is_the_discounted_return_minus_value() {
        let (adv, ret) = gae(&[0.0, 0.0, 1.0], &[0.5, 0.2, 0.1], 1.0, 1.0);
        assert_eq!(ret, vec![1.0, 1.0, 1.0]);
        assert!((adv[0] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn group_advantages_sum_to_zero() {
        let r = [1.0, 0.0, 0.5, 2.0, 2.0, 2.0];
        let a = rloo_advantages(&r, 3).unwrap();
        assert!(a[..3].iter().sum::<f64>().abs() < 1e-12);
        let g = grpo_advantages(&r, 3, true).unwrap();
        assert_eq!(&g[3..], &[0.0, 0.0, 0.0]);
        assert!(rloo_advantages(&r, 4).is_err());
    }

    #[test]
    fn adaptive_controller_moves_toward_the_target() {
        let mut k = KlController::adaptive(0.2, 6.0, 10_000.0);
        k.update(12.0, 512);
        assert!((k.value - 0.2 * (1.0 + 0.2 * 512.0 / 10_000.0)).abs() < 1e-15);
        let mut f = KlController::fixed(0.1);
        f.update(100.0, 512);
        assert_eq!(f.value, 0.1);
        assert!((best_of_n_kl(1)).abs() < 1e-15);
    }
}
