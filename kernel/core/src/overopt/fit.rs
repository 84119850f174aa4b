//! Least-squares fits of Gao et al.'s functional forms for gold reward against d = √KL:
//! best-of-n `R(d) = d (α − β d)` and RL `R(d) = d (α − β log d)`.
//!
//! Both forms are linear in (α, β), so the least-squares solution is the one of a regression
//! without intercept on the features `d` and `−d²` (or `−d log d`, 0 at d = 0); scipy's
//! `curve_fit` converges to the same point. The standard errors are `curve_fit`'s
//! (`absolute_sigma = False`: `(JᵀJ)⁻¹ · RSS / (n − 2)`), and the intervals are
//! `estimate ± t(1 − (1 − level)/2, n − 2) · se`. Checked against scipy in
//! `kernel/core/tests/oversight_parity.rs` (fixtures from `tests/parity/make_overopt_fixtures.py`).

use crate::oversight::t_quantile;
use crate::{Error, Result};

const OP: &str = "overopt.fit";

/// Which of Gao et al.'s forms to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GaoForm {
    /// Best-of-n sampling: `R(d) = d (α − β d)`.
    BestOfN,
    /// Reinforcement learning: `R(d) = d (α − β log d)`.
    Rl,
}

impl GaoForm {
    /// The form's name in options: `"bon"` or `"rl"`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "bon" => Ok(GaoForm::BestOfN),
            "rl" => Ok(GaoForm::Rl),
            other => Err(Error::invalid(
                OP,
                "form",
                "'bon' or 'rl'",
                format!("'{other}'"),
            )),
        }
    }

    /// The feature multiplying −β.
    fn curvature(self, d: f64) -> f64 {
        match self {
            GaoForm::BestOfN => d * d,
            GaoForm::Rl if d > 0.0 => d * d.ln(),
            GaoForm::Rl => 0.0,
        }
    }

    /// `R(d)` for coefficients `alpha`, `beta`.
    pub fn eval(self, d: f64, alpha: f64, beta: f64) -> f64 {
        alpha * d - beta * self.curvature(d)
    }
}

/// A fitted form with `curve_fit`'s standard errors and t intervals.
#[derive(Clone, Debug, PartialEq)]
pub struct GaoFit {
    pub form: GaoForm,
    pub alpha: f64,
    pub beta: f64,
    pub alpha_se: f64,
    pub beta_se: f64,
    /// `(low, high)` at `level`.
    pub alpha_ci: (f64, f64),
    pub beta_ci: (f64, f64),
    pub level: f64,
    /// Points fitted.
    pub n: usize,
    /// Residual sum of squares.
    pub rss: f64,
}

impl GaoFit {
    /// The d ≥ 0 where the fitted gold reward peaks (best-of-n: α / 2β; RL: exp(α/β − 1)), when
    /// the curve has a peak there (β > 0, and for best-of-n α ≥ 0).
    pub fn peak(&self) -> Option<f64> {
        if self.beta <= 0.0 {
            return None;
        }
        match self.form {
            GaoForm::BestOfN if self.alpha >= 0.0 => Some(self.alpha / (2.0 * self.beta)),
            GaoForm::BestOfN => None,
            GaoForm::Rl => Some((self.alpha / self.beta - 1.0).exp()),
        }
    }
}

/// Fits `form` to the points `(d[i], reward[i])`; `level` is the intervals' coverage (e.g. 0.95).
pub fn fit_gao(d: &[f64], reward: &[f64], form: GaoForm, level: f64) -> Result<GaoFit> {
    if d.len() != reward.len() {
        return Err(Error::invalid(
            OP,
            "reward",
            format!("as many values as d ({})", d.len()),
            reward.len(),
        ));
    }
    if d.len() < 3 {
        return Err(Error::invalid(
            OP,
            "data",
            "at least 3 points (2 coefficients and an error variance)",
            format!("{} points", d.len()),
        ));
    }
    if let Some(i) = d.iter().position(|v| !v.is_finite() || *v < 0.0) {
        return Err(Error::invalid(
            OP,
            "d",
            "finite values ≥ 0 (d = √KL)",
            format!("{} at row {}", d[i], i + 1),
        ));
    }
    if let Some(i) = reward.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            OP,
            "reward",
            "finite values",
            format!("{} at row {}", reward[i], i + 1),
        ));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::invalid(OP, "level", "a number in (0, 1)", level));
    }
    // Features x1 = d, x2 = −curvature(d); normal equations of the 2 × 2 system.
    let (mut s11, mut s12, mut s22, mut s1y, mut s2y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (&di, &yi) in d.iter().zip(reward) {
        let (x1, x2) = (di, -form.curvature(di));
        s11 += x1 * x1;
        s12 += x1 * x2;
        s22 += x2 * x2;
        s1y += x1 * yi;
        s2y += x2 * yi;
    }
    let det = s11 * s22 - s12 * s12;
    // Finite: the inputs were checked above.
    if det.abs() <= 1e-12 * (s11 * s22).max(f64::MIN_POSITIVE) {
        return Err(Error::invalid(
            OP,
            "d",
            "at least two distinct d > 0",
            "too few to tell α from β",
        ));
    }
    let alpha = (s22 * s1y - s12 * s2y) / det;
    let beta = (s11 * s2y - s12 * s1y) / det;
    let rss: f64 = d
        .iter()
        .zip(reward)
        .map(|(&di, &yi)| (yi - form.eval(di, alpha, beta)).powi(2))
        .sum();
    let dof = (d.len() - 2) as f64;
    // Points at d = 0 carry no information on α or β (both forms are 0 there) but count in
    // scipy's n − 2. With fewer than three points at d > 0 the two coefficients pass exactly
    // through the informative points and nothing is left to estimate the error from: the
    // standard errors are unknown (infinite), not the zero scipy's convention would give.
    let informative = d.iter().filter(|&&v| v > 0.0).count();
    let s2 = if informative > 2 {
        rss / dof
    } else {
        f64::INFINITY
    };
    let (alpha_se, beta_se) = ((s22 / det * s2).sqrt(), (s11 / det * s2).sqrt());
    let q = t_quantile(1.0 - (1.0 - level) / 2.0, dof);
    Ok(GaoFit {
        form,
        alpha,
        beta,
        alpha_se,
        beta_se,
        alpha_ci: (alpha - q * alpha_se, alpha + q * alpha_se),
        beta_ci: (beta - q * beta_se, beta + q * beta_se),
        level,
        n: d.len(),
        rss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_points_give_back_their_coefficients_and_the_peak() {
        for form in [GaoForm::BestOfN, GaoForm::Rl] {
            let d: Vec<f64> = (0..8).map(|i| 0.4 * i as f64).collect();
            let r: Vec<f64> = d.iter().map(|&x| form.eval(x, 1.3, 0.4)).collect();
            let f = fit_gao(&d, &r, form, 0.95).unwrap();
            assert!(
                (f.alpha - 1.3).abs() < 1e-9 && (f.beta - 0.4).abs() < 1e-9,
                "{f:?}"
            );
            assert!(f.rss < 1e-18);
        }
        let f = fit_gao(&[0.0, 1.0, 2.0], &[0.0, 0.5, 0.0], GaoForm::BestOfN, 0.9).unwrap();
        assert!((f.peak().unwrap() - 1.0).abs() < 1e-9);
        // Two points at d > 0 determine α and β exactly and leave no error to estimate: the
        // intervals are unbounded, not zero-width.
        assert!(
            f.alpha_se.is_infinite() && f.beta_ci.0 == f64::NEG_INFINITY,
            "{f:?}"
        );
        assert!(f.alpha_ci.1 == f64::INFINITY);
    }

    #[test]
    fn bad_input_is_named() {
        let e = |r: Result<GaoFit>| r.unwrap_err().to_string();
        assert!(e(fit_gao(&[0.0, 1.0], &[0.0, 1.0], GaoForm::Rl, 0.95)).contains("at least 3"));
        assert!(e(fit_gao(&[0.0, -1.0, 2.0], &[0.0; 3], GaoForm::Rl, 0.95)).contains("'d'"));
        assert!(e(fit_gao(&[0.0, 1.0, 2.0], &[0.0; 2], GaoForm::Rl, 0.95)).contains("'reward'"));
        assert!(e(fit_gao(&[0.0, 1.0, 1.0], &[0.0; 3], GaoForm::Rl, 0.95)).contains("distinct"));
        assert!(e(fit_gao(&[0.0, 1.0, 2.0], &[0.0; 3], GaoForm::Rl, 1.0)).contains("'level'"));
        assert!(GaoForm::parse("ppo")
            .unwrap_err()
            .to_string()
            .contains("'bon' or 'rl'"));
    }
}
