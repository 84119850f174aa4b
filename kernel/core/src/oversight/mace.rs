//! MACE, Multi-Annotator Competence Estimation (Hovy et al., NAACL 2013): each worker knows the
//! answer with probability θ and then gives the true label; otherwise they spam, drawing a label
//! from their own strategy distribution ξ. True labels are uniform. Fitted by EM or by
//! variational Bayes with Beta(α, β) priors on (spam, know) and symmetric Dirichlet(10) priors on
//! each strategy — crowd-kit 1.4's parametrisation, with three documented departures:
//!
//! - crowd-kit fills the strategy counts from a pandas `groupby` (rows sorted by worker name,
//!   columns by label name) into arrays indexed in first-seen order, so whenever the two orders
//!   differ a worker's strategy is updated with another worker's counts. Ours keeps them aligned;
//!   the parity fixtures compare with crowd-kit patched to align them (see the fixture script).
//! - crowd-kit seeds every restart with the same `random_state`, so all restarts are identical;
//!   ours draws each restart from its own stream of `seed`.
//! - The posteriors are computed in log space per task (crowd-kit multiplies the factors, which
//!   underflows for tasks with a few hundred labels), and the log-likelihood that picks the best
//!   restart is exact (crowd-kit adds 1e-8 to each task's marginal before the log).

use polars::prelude::*;
use serde::Deserialize;

use super::aggregate::{Aggregation, Ties};
use super::crowd::Crowd;
use crate::rng::Rng;
use crate::{Error, Result};

const OP: &str = "aggregate.mace";

/// How the M-step turns expected counts into parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaceMethod {
    /// Variational Bayes with the priors (crowd-kit's default).
    Vb,
    /// Maximum likelihood with add-`smoothing` counts.
    Em,
}

/// MACE's options; the defaults are crowd-kit's.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaceOptions {
    /// Random restarts; the one with the highest marginal likelihood is kept.
    pub n_restarts: usize,
    /// EM iterations per restart (crowd-kit runs all of them; see `tol`).
    pub n_iter: usize,
    /// Stop a restart early when the log-likelihood changes by less than this (0: never).
    pub tol: f64,
    pub method: MaceMethod,
    /// Added to every count before normalising (EM only); `None`: 0.01 / number of labels,
    /// which is what crowd-kit uses whatever its `smoothing` attribute says.
    pub smoothing: Option<f64>,
    /// Initial weights are drawn uniformly from [1, 1 + default_noise], then normalised.
    pub default_noise: f64,
    /// Beta prior on (spam, know) (VB only).
    pub alpha: f64,
    pub beta: f64,
    pub seed: u64,
}

impl Default for MaceOptions {
    fn default() -> Self {
        Self {
            n_restarts: 10,
            n_iter: 50,
            tol: 0.0,
            method: MaceMethod::Vb,
            smoothing: None,
            default_noise: 0.5,
            alpha: 0.5,
            beta: 0.5,
            seed: 0,
        }
    }
}

impl crate::Options for MaceOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        use crate::validate::{non_negative, positive, positive_count, positive_opt};
        positive_count(op, "n_restarts", self.n_restarts)?;
        positive_count(op, "n_iter", self.n_iter)?;
        non_negative(op, "tol", self.tol)?;
        non_negative(op, "default_noise", self.default_noise)?;
        // A zero count with no smoothing would make a weight 0 and its logarithm −∞.
        positive_opt(op, "smoothing", self.smoothing)?;
        positive(op, "alpha", self.alpha)?;
        positive(op, "beta", self.beta)
    }
}

/// MACE's parameters: per worker (P(spam), P(know)) and the spamming strategy over labels
/// (n_workers × n_labels, row-major), in the crowd's sorted worker and label order. Under VB
/// these are the variational weights exp(E[log p]), which need not sum to one.
#[derive(Clone, Debug, PartialEq)]
pub struct MaceParams {
    pub spamming: Vec<[f64; 2]>,
    pub strategies: Vec<f64>,
}

/// What MACE found: the aggregation (skills = P(know) / (P(spam) + P(know))), the parameters and
/// the marginal log-likelihood of the kept restart.
#[derive(Clone, Debug)]
pub struct Mace {
    pub aggregation: Aggregation,
    pub params: MaceParams,
    pub log_likelihood: f64,
}

impl Mace {
    /// `worker, spam, know` (crowd-kit's `spamming_`).
    pub fn spamming_frame(&self) -> Result<DataFrame> {
        let c = &self.aggregation.crowd;
        let s = &self.params.spamming;
        DataFrame::new_infer_height(vec![
            c.workers.all("worker"),
            Column::new("spam".into(), s.iter().map(|x| x[0]).collect::<Vec<_>>()),
            Column::new("know".into(), s.iter().map(|x| x[1]).collect::<Vec<_>>()),
        ])
        .map_err(Error::polars(OP, "building the spamming table"))
    }

    /// `worker`, then one column per label (crowd-kit's `thetas_`).
    pub fn strategies_frame(&self) -> Result<DataFrame> {
        let c = &self.aggregation.crowd;
        let k = c.n_labels();
        let mut cols = vec![c.workers.all("worker")];
        for l in 0..k {
            let v: Vec<f64> = self
                .params
                .strategies
                .iter()
                .skip(l)
                .step_by(k)
                .copied()
                .collect();
            cols.push(Column::new(c.labels.name(l).into(), v));
        }
        DataFrame::new_infer_height(cols).map_err(Error::polars(OP, "building the strategy table"))
    }
}

/// ψ(x) for x > 0: the recurrence up to x ≥ 10, then the asymptotic series (its next term is
/// below 1e-15 there).
fn digamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    let series = r
        * (1.0 / 12.0
            - r * (1.0 / 120.0
                - r * (1.0 / 252.0 - r * (1.0 / 240.0 - r * (1.0 / 132.0 - r * 691.0 / 32760.0)))));
    acc + x.ln() - 0.5 / x - series
}

/// One E-step: posteriors over true labels, expected (spam, know) counts per worker, expected
/// strategy counts per (worker, label), and the marginal log-likelihood.
struct Expectation {
    probas: Vec<f64>,
    knowing: Vec<[f64; 2]>,
    strategy: Vec<f64>,
    log_likelihood: f64,
}

fn e_step(c: &Crowd, offsets: &[usize], order: &[u32], p: &MaceParams) -> Expectation {
    let k = c.n_labels();
    let log_k = (k as f64).ln();
    let mut probas = vec![0.0; c.n_tasks() * k];
    let mut log_likelihood = 0.0;
    // A worker's answer a to a task whose truth is l has probability spam·ξ_a + know·[a = l]:
    // the spam term for every l, plus the knowing term for l = a.
    let spam_term = |r: usize| {
        let w = c.worker[r] as usize;
        p.spamming[w][0] * p.strategies[w * k + c.label[r] as usize]
    };
    for t in 0..c.n_tasks() {
        let row = &mut probas[t * k..(t + 1) * k];
        let mut base = -log_k;
        for &r in &order[offsets[t]..offsets[t + 1]] {
            let r = r as usize;
            let s = spam_term(r);
            let know = p.spamming[c.worker[r] as usize][1];
            base += s.ln();
            row[c.label[r] as usize] += (s + know).ln() - s.ln();
        }
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        row.iter_mut().for_each(|v| *v = (*v - max).exp());
        let z: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= z);
        log_likelihood += base + max + z.ln();
    }
    let mut knowing = vec![[0.0; 2]; c.n_workers()];
    let mut strategy = vec![0.0; c.n_workers() * k];
    for r in 0..c.rows() {
        let (w, a) = (c.worker[r] as usize, c.label[r] as usize);
        let s = spam_term(r);
        let know = p.spamming[w][1];
        let q = probas[c.task[r] as usize * k + a];
        // P(knowing | data): the truth is the answer and the worker knew it.
        let knew = q * know / (s + know);
        knowing[w][0] += 1.0 - knew;
        knowing[w][1] += knew;
        strategy[w * k + a] += 1.0 - knew;
    }
    Expectation {
        probas,
        knowing,
        strategy,
        log_likelihood,
    }
}

/// Normalises `counts + prior` in rows of `width`: plainly (EM) or as variational weights
/// exp(ψ(x + prior) − ψ(Σ(x + prior))) (VB).
fn normalise(counts: &[f64], width: usize, prior: f64, vb: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(counts.len());
    for row in counts.chunks(width) {
        let total: f64 = row.iter().map(|x| x + prior).sum();
        if vb {
            let norm = digamma(total);
            out.extend(row.iter().map(|x| (digamma(x + prior) - norm).exp()));
        } else if total > 0.0 {
            out.extend(row.iter().map(|x| (x + prior) / total));
        } else {
            out.extend(row.iter().map(|_| 0.0));
        }
    }
    out
}

fn m_step(c: &Crowd, o: &MaceOptions, e: &Expectation) -> MaceParams {
    let k = c.n_labels();
    let vb = o.method == MaceMethod::Vb;
    let smoothing = o.smoothing.unwrap_or(0.01 / k as f64);
    let spamming = if vb {
        // Beta(α, β) on (spam, know): not symmetric in general, so normalise by hand.
        e.knowing
            .iter()
            .map(|&[s, n]| {
                let norm = digamma(s + n + o.alpha + o.beta);
                [
                    (digamma(s + o.alpha) - norm).exp(),
                    (digamma(n + o.beta) - norm).exp(),
                ]
            })
            .collect()
    } else {
        let flat: Vec<f64> = e.knowing.iter().flatten().copied().collect();
        normalise(&flat, 2, smoothing, false)
            .chunks(2)
            .map(|x| [x[0], x[1]])
            .collect()
    };
    let strategies = if vb {
        normalise(&e.strategy, k, 10.0, true)
    } else {
        normalise(&e.strategy, k, smoothing, false)
    };
    MaceParams {
        spamming,
        strategies,
    }
}

fn initial(c: &Crowd, o: &MaceOptions, rng: &mut Rng) -> MaceParams {
    let k = c.n_labels();
    let mut draw = |n: usize| -> Vec<f64> {
        let v: Vec<f64> = (0..n)
            .map(|_| 1.0 + o.default_noise * rng.uniform())
            .collect();
        let z: f64 = v.iter().sum();
        v.into_iter().map(|x| x / z).collect()
    };
    let spamming = (0..c.n_workers())
        .map(|_| {
            let v = draw(2);
            [v[0], v[1]]
        })
        .collect();
    let strategies = (0..c.n_workers()).flat_map(|_| draw(k)).collect();
    MaceParams {
        spamming,
        strategies,
    }
}

fn check_params(c: &Crowd, p: &MaceParams) -> Result<()> {
    if p.spamming.len() != c.n_workers() || p.strategies.len() != c.n_workers() * c.n_labels() {
        return Err(Error::invalid(
            OP,
            "init",
            format!(
                "{} (spam, know) pairs and {}×{} strategy weights",
                c.n_workers(),
                c.n_workers(),
                c.n_labels()
            ),
            format!("{} and {}", p.spamming.len(), p.strategies.len()),
        ));
    }
    let ok = |v: f64| v.is_finite() && v > 0.0;
    if !p
        .spamming
        .iter()
        .flatten()
        .chain(&p.strategies)
        .all(|&v| ok(v))
    {
        return Err(Error::invalid(
            OP,
            "init",
            "finite positive weights",
            "a zero, negative or non-finite weight",
        ));
    }
    Ok(())
}

/// One restart from `init`: iterations run, whether it stopped on `tol` (or, with `tol` = 0,
/// whether the last step changed the log-likelihood by less than 1e-9 per label), the fitted
/// parameters and the final expectation.
fn fit_from(
    c: &Crowd,
    o: &MaceOptions,
    offsets: &[usize],
    order: &[u32],
    init: MaceParams,
) -> (usize, bool, MaceParams, Expectation) {
    let mut params = init;
    let mut e = e_step(c, offsets, order, &params);
    let (mut iterations, mut converged) = (0, false);
    for _ in 0..o.n_iter {
        iterations += 1;
        params = m_step(c, o, &e);
        let next = e_step(c, offsets, order, &params);
        let change = (next.log_likelihood - e.log_likelihood).abs();
        e = next;
        if o.tol > 0.0 && change < o.tol {
            converged = true;
            break;
        }
        converged = change < 1e-9 * c.rows() as f64;
    }
    (iterations, converged, params, e)
}

fn finish(c: &Crowd, run: (usize, bool, MaceParams, Expectation)) -> Mace {
    let (iterations, converged, params, e) = run;
    let skills = params.spamming.iter().map(|[s, n]| n / (s + n)).collect();
    Mace {
        aggregation: Aggregation {
            crowd: c.clone(),
            probas: e.probas,
            skills: Some(skills),
            errors: None,
            priors: None,
            iterations,
            converged,
            ties: Ties::FirstSeen,
        },
        params,
        log_likelihood: e.log_likelihood,
    }
}

/// MACE with `n_restarts` random starts; keeps the one with the highest marginal likelihood.
pub fn mace(c: &Crowd, o: &MaceOptions) -> Result<Mace> {
    crate::Options::check(o, OP)?;
    let (offsets, order) = c.by_task();
    let mut best: Option<(usize, bool, MaceParams, Expectation)> = None;
    for restart in 0..o.n_restarts {
        let mut rng = Rng::derived(o.seed, restart as u64);
        let run = fit_from(c, o, &offsets, &order, initial(c, o, &mut rng));
        if best
            .as_ref()
            .is_none_or(|b| run.3.log_likelihood > b.3.log_likelihood)
        {
            best = Some(run);
        }
    }
    Ok(finish(c, best.expect("n_restarts ≥ 1 was checked")))
}

/// MACE from given parameters (one run, `n_restarts` ignored): to continue a fit, or to start
/// where another implementation started.
pub fn mace_from(c: &Crowd, o: &MaceOptions, init: MaceParams) -> Result<Mace> {
    crate::Options::check(o, OP)?;
    check_params(c, &init)?;
    let (offsets, order) = c.by_task();
    Ok(finish(c, fit_from(c, o, &offsets, &order, init)))
}

#[cfg(test)]
mod tests {
    use super::digamma;

    #[test]
    fn digamma_matches_known_values() {
        // ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2, ψ(10) = H_9 − γ.
        let gamma = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + gamma).abs() < 1e-14);
        assert!((digamma(0.5) + gamma + 2.0 * 2f64.ln()).abs() < 1e-14);
        let h9: f64 = (1..10).map(|i| 1.0 / i as f64).sum();
        assert!((digamma(10.0) - (h9 - gamma)).abs() < 1e-14);
    }
}
