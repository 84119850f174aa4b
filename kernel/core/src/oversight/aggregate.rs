//! Label aggregation, as Toloka crowd-kit 1.4 computes it: majority vote, Wawa, zero-based skill,
//! Dawid-Skene and one-coin Dawid-Skene. Same initialisations, updates, clipping (1e-10) and
//! stopping rules, so results agree with crowd-kit to rounding (`tests/oversight_parity.rs`).

use polars::prelude::*;
use serde::Deserialize;

use super::crowd::Crowd;
use super::metrics::{parallel_blocks_mut, parallel_map};
use crate::{Error, Options, Result};

const EPS: f64 = 1e-10;

/// What an aggregation found.
#[derive(Clone, Debug)]
pub struct Aggregation {
    pub crowd: Crowd,
    /// (n_tasks × n_labels), row-major.
    pub probas: Vec<f64>,
    /// One per worker (`None`: the method has no skills); NaN never appears.
    pub skills: Option<Vec<f64>>,
    /// Dawid-Skene confusion matrices: (worker, observed, true) → probability, only for the
    /// (worker, observed) pairs that occur, as crowd-kit reports them.
    pub errors: Option<Vec<(u32, u32, Vec<f64>)>>,
    /// Class priors (Dawid-Skene).
    pub priors: Option<Vec<f64>>,
    /// Iterations run and whether the stopping rule was met (EM methods).
    pub iterations: usize,
    pub converged: bool,
    /// How ties between labels are broken: the label seen first in the data (plain majority
    /// vote and the EM methods), or the smallest label (skill-weighted votes). This is
    /// crowd-kit's behaviour, which follows pandas' column order in each code path.
    pub ties: Ties,
}

/// See [`Aggregation::ties`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ties {
    FirstSeen,
    Smallest,
}

fn pick(c: &Crowd, ties: Ties, row: &[f64]) -> usize {
    match ties {
        Ties::FirstSeen => c.argmax(row),
        Ties::Smallest => {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best
        }
    }
}

impl Aggregation {
    fn k(&self) -> usize {
        self.crowd.n_labels()
    }

    /// The most probable label of each task (ties: see [`Aggregation::ties`]).
    pub fn labels(&self) -> Vec<usize> {
        self.probas
            .chunks(self.k())
            .map(|r| pick(&self.crowd, self.ties, r))
            .collect()
    }

    /// `task, label`.
    pub fn labels_frame(&self) -> Result<DataFrame> {
        let c = &self.crowd;
        let labels = self.labels();
        DataFrame::new_infer_height(vec![
            c.tasks.all("task"),
            c.labels.column("label", labels.into_iter()),
        ])
        .map_err(Error::polars("aggregate", "building the labels table"))
    }

    /// `task`, then one probability column per label (named by the label).
    pub fn probas_frame(&self) -> Result<DataFrame> {
        let c = &self.crowd;
        let k = self.k();
        let mut cols = vec![c.tasks.all("task")];
        for l in 0..k {
            let v: Vec<f64> = self.probas.iter().skip(l).step_by(k).copied().collect();
            cols.push(Column::new(c.labels.name(l).into(), v));
        }
        DataFrame::new_infer_height(cols).map_err(Error::polars(
            "aggregate",
            "building the probabilities table",
        ))
    }

    /// `worker, skill`.
    pub fn skills_frame(&self) -> Result<Option<DataFrame>> {
        let Some(s) = &self.skills else {
            return Ok(None);
        };
        let c = &self.crowd;
        DataFrame::new_infer_height(vec![
            c.workers.all("worker"),
            Column::new("skill".into(), s.clone()),
        ])
        .map(Some)
        .map_err(Error::polars("aggregate", "building the skills table"))
    }

    /// `worker, label` (observed), then one column per true label.
    pub fn errors_frame(&self) -> Result<Option<DataFrame>> {
        let Some(e) = &self.errors else {
            return Ok(None);
        };
        let c = &self.crowd;
        let mut cols = vec![
            c.workers.column("worker", e.iter().map(|x| x.0 as usize)),
            c.labels.column("label", e.iter().map(|x| x.1 as usize)),
        ];
        for t in 0..self.k() {
            cols.push(Column::new(
                c.labels.name(t).into(),
                e.iter().map(|x| x.2[t]).collect::<Vec<_>>(),
            ));
        }
        DataFrame::new_infer_height(cols)
            .map(Some)
            .map_err(Error::polars("aggregate", "building the errors table"))
    }
}

/// Weighted vote: per task, the sum of the weights of the workers who gave each label,
/// normalised. A task whose weights sum to 0 gets equal probabilities for the labels it received
/// (crowd-kit would divide by zero).
fn vote(c: &Crowd, weight: impl Fn(usize) -> f64) -> Vec<f64> {
    let k = c.n_labels();
    let mut scores = vec![0.0; c.n_tasks() * k];
    let mut seen = vec![false; c.n_tasks() * k];
    for r in 0..c.rows() {
        let i = c.task[r] as usize * k + c.label[r] as usize;
        scores[i] += weight(c.worker[r] as usize);
        seen[i] = true;
    }
    for (t, row) in scores.chunks_mut(k).enumerate() {
        let z: f64 = row.iter().sum();
        if z > 0.0 {
            row.iter_mut().for_each(|v| *v /= z);
        } else {
            let n = seen[t * k..(t + 1) * k].iter().filter(|&&s| s).count() as f64;
            for (l, v) in row.iter_mut().enumerate() {
                *v = if seen[t * k + l] { 1.0 / n } else { 0.0 };
            }
        }
    }
    scores
}

/// The unweighted vote of [`vote`], task blocks in parallel (the rows grouped by task).
fn task_votes(c: &Crowd, offsets: &[usize], order: &[u32]) -> Vec<f64> {
    let k = c.n_labels();
    let n = c.n_tasks();
    let blocks = parallel_map(n.div_ceil(TASK_BLOCK), |b| {
        let tasks = b * TASK_BLOCK..((b + 1) * TASK_BLOCK).min(n);
        let mut scores = vec![0.0; tasks.len() * k];
        for (row, t) in scores.chunks_exact_mut(k).zip(tasks) {
            let rows = &order[offsets[t]..offsets[t + 1]];
            for &r in rows {
                row[c.label[r as usize] as usize] += 1.0;
            }
            let z = rows.len() as f64;
            row.iter_mut().for_each(|v| *v /= z);
        }
        scores
    });
    blocks.concat()
}

/// Each worker's accuracy against `truth` (crowd-kit's `get_accuracy`: a worker who gave the
/// same label to the same task twice counts once).
fn accuracy(c: &Crowd, truth: &[usize]) -> Vec<f64> {
    let (offsets, order) = c.by_task();
    let mut hits = vec![0.0; c.n_workers()];
    let mut total = vec![0.0; c.n_workers()];
    let mut seen: Vec<(u32, u32)> = Vec::new();
    for t in 0..c.n_tasks() {
        seen.clear();
        for &r in &order[offsets[t]..offsets[t + 1]] {
            let r = r as usize;
            let key = (c.worker[r], c.label[r]);
            // Tasks have a handful of labels: a linear scan beats hashing.
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let w = c.worker[r] as usize;
            total[w] += 1.0;
            if truth[t] == c.label[r] as usize {
                hits[w] += 1.0;
            }
        }
    }
    hits.iter().zip(&total).map(|(h, t)| h / t).collect()
}

fn finish(crowd: &Crowd, probas: Vec<f64>, skills: Option<Vec<f64>>, ties: Ties) -> Aggregation {
    Aggregation {
        ties,
        crowd: crowd.clone(),
        probas,
        skills,
        errors: None,
        priors: None,
        iterations: 0,
        converged: true,
    }
}

/// Majority vote; skills are the workers' accuracies against the result.
pub fn majority_vote(c: &Crowd) -> Aggregation {
    let probas = vote(c, |_| 1.0);
    let labels: Vec<usize> = probas
        .chunks(c.n_labels())
        .map(|r| pick(c, Ties::FirstSeen, r))
        .collect();
    let skills = accuracy(c, &labels);
    finish(c, probas, Some(skills), Ties::FirstSeen)
}

/// Majority vote weighted by each worker's accuracy on the gold tasks (`gold[task]` = true
/// label index). Workers without gold get the mean gold accuracy.
pub fn gold_majority_vote(c: &Crowd, gold: &[Option<usize>]) -> Result<Aggregation> {
    let mut hits = vec![0.0; c.n_workers()];
    let mut total = vec![0.0; c.n_workers()];
    for r in 0..c.rows() {
        if let Some(g) = gold[c.task[r] as usize] {
            let w = c.worker[r] as usize;
            total[w] += 1.0;
            hits[w] += f64::from(u8::from(g == c.label[r] as usize));
        }
    }
    let known: Vec<f64> = hits
        .iter()
        .zip(&total)
        .filter(|(_, t)| **t > 0.0)
        .map(|(h, t)| h / t)
        .collect();
    if known.is_empty() {
        return Err(Error::invalid(
            "aggregate.gold_majority_vote",
            "gold",
            "gold labels for tasks that workers labelled",
            "no overlap",
        ));
    }
    let mean = known.iter().sum::<f64>() / known.len() as f64;
    let skills: Vec<f64> = hits
        .iter()
        .zip(&total)
        .map(|(h, t)| if *t > 0.0 { h / t } else { mean })
        .collect();
    let probas = vote(c, |w| skills[w]);
    Ok(finish(c, probas, Some(skills), Ties::Smallest))
}

/// Wawa: majority vote weighted by each worker's agreement with the plain majority vote.
pub fn wawa(c: &Crowd) -> Aggregation {
    let mv = majority_vote(c);
    let skills = mv.skills.expect("majority vote has skills");
    let probas = vote(c, |w| skills[w]);
    finish(c, probas, Some(skills), Ties::Smallest)
}

/// Options of the iterative methods; the defaults are crowd-kit's.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IterOptions {
    pub n_iter: usize,
    pub tol: f64,
    /// Zero-based skill: learning rate, halved every `lr_steps_to_reduce` iterations.
    pub lr_init: f64,
    pub lr_steps_to_reduce: usize,
    pub lr_reduce_factor: f64,
    pub eps: f64,
}

impl Default for IterOptions {
    fn default() -> Self {
        Self {
            n_iter: 100,
            tol: 1e-5,
            lr_init: 1.0,
            lr_steps_to_reduce: 20,
            lr_reduce_factor: 0.5,
            eps: 1e-5,
        }
    }
}

impl crate::Options for IterOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        use crate::validate::{non_negative, positive, positive_count, within};
        positive_count(op, "n_iter", self.n_iter)?;
        non_negative(op, "tol", self.tol)?;
        // Zero-based skill's schedule (the other methods keep the defaults, which pass).
        positive(op, "lr_init", self.lr_init)?;
        positive_count(op, "lr_steps_to_reduce", self.lr_steps_to_reduce)?;
        within(
            op,
            "lr_reduce_factor",
            self.lr_reduce_factor,
            0.0,
            1.0,
            false,
        )?;
        non_negative(op, "eps", self.eps)
    }
}

/// Zero-based skill: skills start at 1/K + eps and move towards each worker's accuracy against
/// the skill-weighted vote, with a decaying learning rate.
pub fn zero_based_skill(c: &Crowd, o: &IterOptions) -> Result<Aggregation> {
    o.check("aggregate.zero_based_skill")?;
    let k = c.n_labels();
    let mut skills = vec![1.0 / k as f64 + o.eps; c.n_workers()];
    let mut lr = o.lr_init;
    for iteration in 1..=o.n_iter {
        if iteration % o.lr_steps_to_reduce == 0 {
            lr *= o.lr_reduce_factor;
        }
        let probas = vote(c, |w| skills[w]);
        let labels: Vec<usize> = probas
            .chunks(k)
            .map(|r| pick(c, Ties::Smallest, r))
            .collect();
        let acc = accuracy(c, &labels);
        for (s, a) in skills.iter_mut().zip(acc) {
            *s += lr * (a - *s);
        }
    }
    let probas = vote(c, |w| skills[w]);
    let mut out = finish(c, probas, Some(skills), Ties::Smallest);
    out.iterations = o.n_iter;
    Ok(out)
}

/// Tasks per parallel block. Blocks are fixed in size, not one per thread, so that sums over
/// them — and so every result — do not depend on the machine's core count.
const TASK_BLOCK: usize = 4096;

/// Label rows per parallel block of the M-steps: at least 64k, and enough that the per-block
/// partial counts (`width` numbers each) stay small next to the data.
fn row_block(width: usize) -> usize {
    (1 << 16).max(4 * width)
}

/// Per-block partial sums over label rows, added up in block order: `f(rows, partial)`.
fn sum_rows(
    c: &Crowd,
    width: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [f64]) + Sync,
) -> Vec<f64> {
    let block = row_block(width);
    let n = c.rows();
    let parts = parallel_map(n.div_ceil(block), |b| {
        let mut part = vec![0.0; width];
        f(b * block..((b + 1) * block).min(n), &mut part);
        part
    });
    let mut total = vec![0.0; width];
    for part in parts {
        total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
    }
    total
}

/// The E-step over one block of tasks (`probas`: their rows): posteriors, and their share of
/// the bound.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn e_block(
    k: usize,
    c: &Crowd,
    offsets: &[usize],
    order: &[u32],
    log_prior: &[f64],
    log_err: &[f64],
    previous: Option<&[f64]>,
    first: usize,
    probas: &mut [f64],
) -> f64 {
    let mut bound = 0.0;
    for (i, row) in probas.chunks_exact_mut(k).enumerate() {
        let t = first + i;
        row.copy_from_slice(&log_prior[..k]);
        for &r in &order[offsets[t]..offsets[t + 1]] {
            let r = r as usize;
            let base = (c.worker[r] as usize * k + c.label[r] as usize) * k;
            for (v, e) in row.iter_mut().zip(&log_err[base..base + k]) {
                *v += e;
            }
        }
        if let Some(prev) = previous {
            // Σ_rows Σ_l p_l·(ln err + ln prior) − Σ_l p_l ln p_l, where the row holds
            // log2 prior + Σ_rows log2 err: the prior enters once per label row.
            let p = &prev[t * k..(t + 1) * k];
            let extra = (offsets[t + 1] - offsets[t]) as f64 - 1.0;
            let mut sum = 0.0;
            for l in 0..k {
                sum += p[l] * (row[l] + extra * log_prior[l]);
            }
            bound += sum * std::f64::consts::LN_2;
            bound -= p.iter().map(|&q| q.max(EPS) * q.max(EPS).ln()).sum::<f64>();
        }
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        row.iter_mut().for_each(|v| *v = (*v - max).exp2());
        let z: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= z);
    }
    bound
}

/// E-step: task posteriors from priors and confusion matrices `err[(w·K + obs)·K + true]`,
/// written to `out`. Given the `previous` posteriors, the same pass returns crowd-kit's evidence
/// lower bound for them under these parameters (what crowd-kit computes after its M-step), per
/// label row: the log-scores the posteriors are made of are the bound's terms.
fn e_step(
    c: &Crowd,
    offsets: &[usize],
    order: &[u32],
    priors: &[f64],
    err: &[f64],
    previous: Option<&[f64]>,
    out: &mut [f64],
) -> f64 {
    let k = c.n_labels();
    let log_prior: Vec<f64> = priors.iter().map(|p| p.max(EPS).log2()).collect();
    let log_err: Vec<f64> = err.iter().map(|e| e.log2()).collect();
    let bounds = parallel_blocks_mut(out, TASK_BLOCK * k, |b, probas| {
        let first = b * TASK_BLOCK;
        let mut block = |k| {
            e_block(
                k, c, offsets, order, &log_prior, &log_err, previous, first, probas,
            )
        };
        // A literal label count lets the compiler unroll the per-label loops of the usual sizes.
        match k {
            2 => block(2),
            3 => block(3),
            4 => block(4),
            5 => block(5),
            _ => block(k),
        }
    });
    bounds.iter().sum::<f64>() / c.rows() as f64
}

fn priors_of(probas: &[f64], k: usize) -> Vec<f64> {
    let n = (probas.len() / k) as f64;
    (0..k)
        .map(|l| probas.iter().skip(l).step_by(k).sum::<f64>() / n)
        .collect()
}

/// Which (worker, observed label) pairs occur.
fn observed(c: &Crowd) -> Vec<bool> {
    let k = c.n_labels();
    let mut seen = vec![false; c.n_workers() * k];
    for r in 0..c.rows() {
        seen[c.worker[r] as usize * k + c.label[r] as usize] = true;
    }
    seen
}

/// Dawid-Skene M-step: each worker's confusion counts from the posteriors, clipped at 1e-10 and
/// normalised over the labels the worker used.
fn ds_m_step(c: &Crowd, probas: &[f64], seen: &[bool]) -> Vec<f64> {
    let k = c.n_labels();
    let mut err = sum_rows(c, c.n_workers() * k * k, |rows, err| {
        for r in rows {
            let base = (c.worker[r] as usize * k + c.label[r] as usize) * k;
            let t = c.task[r] as usize;
            for (e, p) in err[base..base + k]
                .iter_mut()
                .zip(&probas[t * k..(t + 1) * k])
            {
                *e += p;
            }
        }
    });
    for w in 0..c.n_workers() {
        for obs in 0..k {
            if seen[w * k + obs] {
                let base = (w * k + obs) * k;
                err[base..base + k].iter_mut().for_each(|e| *e = e.max(EPS));
            }
        }
        for t in 0..k {
            let z: f64 = (0..k).map(|obs| err[(w * k + obs) * k + t]).sum();
            if z > 0.0 {
                (0..k).for_each(|obs| err[(w * k + obs) * k + t] /= z);
            }
        }
    }
    err
}

/// One-coin M-step: a worker's skill is the mean posterior of the labels they gave; their
/// confusion rows put `skill` on the diagonal and spread the rest evenly, clipped to [ε, 1 − ε].
fn one_coin_m_step(c: &Crowd, probas: &[f64], seen: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let k = c.n_labels();
    let nw = c.n_workers();
    // Per worker: the summed posterior of their labels, then their label count.
    let sums = sum_rows(c, 2 * nw, |rows, part| {
        for r in rows {
            let w = c.worker[r] as usize;
            part[w] += probas[c.task[r] as usize * k + c.label[r] as usize];
            part[nw + w] += 1.0;
        }
    });
    let skills: Vec<f64> = (0..nw).map(|w| sums[w] / sums[nw + w]).collect();
    let mut err = vec![0.0; c.n_workers() * k * k];
    for w in 0..c.n_workers() {
        for obs in 0..k {
            if !seen[w * k + obs] {
                continue;
            }
            for t in 0..k {
                let v = if obs == t {
                    skills[w]
                } else {
                    (1.0 - skills[w]) / (k as f64 - 1.0).max(1.0)
                };
                err[(w * k + obs) * k + t] = v.clamp(EPS, 1.0 - EPS);
            }
        }
    }
    (skills, err)
}

fn em(c: &Crowd, o: &IterOptions, op: &'static str, one_coin: bool) -> Result<Aggregation> {
    o.check(op)?;
    let k = c.n_labels();
    let (offsets, order) = c.by_task();
    let seen = observed(c);
    let mut probas = task_votes(c, &offsets, &order);
    let mut priors = priors_of(&probas, k);
    let (mut skills, mut err) = if one_coin {
        let (s, e) = one_coin_m_step(c, &probas, &seen);
        (Some(s), e)
    } else {
        (None, ds_m_step(c, &probas, &seen))
    };
    // Two buffers of posteriors, swapped each iteration: no allocation inside the loop.
    let mut next = vec![0.0; probas.len()];
    e_step(c, &offsets, &order, &priors, &err, None, &mut next);
    let mut loss = f64::NEG_INFINITY;
    let mut iterations = 0;
    let mut converged = false;
    for _ in 0..o.n_iter {
        iterations += 1;
        std::mem::swap(&mut probas, &mut next);
        priors = priors_of(&probas, k);
        if one_coin {
            let (s, e) = one_coin_m_step(c, &probas, &seen);
            skills = Some(s);
            err = e;
        } else {
            err = ds_m_step(c, &probas, &seen);
        }
        let new_loss = e_step(c, &offsets, &order, &priors, &err, Some(&probas), &mut next);
        if new_loss - loss < o.tol {
            converged = true;
            break;
        }
        loss = new_loss;
    }
    // crowd-kit clips the returned posteriors at 1e-10 (in place, while computing the bound).
    probas.iter_mut().for_each(|p| *p = p.max(EPS));
    let mut errors = Vec::new();
    for w in 0..c.n_workers() {
        for obs in 0..k {
            if seen[w * k + obs] {
                let base = (w * k + obs) * k;
                errors.push((w as u32, obs as u32, err[base..base + k].to_vec()));
            }
        }
    }
    Ok(Aggregation {
        crowd: c.clone(),
        probas,
        skills,
        errors: Some(errors),
        priors: Some(priors),
        iterations,
        converged,
        ties: Ties::FirstSeen,
    })
}

/// Dawid-Skene EM, initialised with majority vote.
pub fn dawid_skene(c: &Crowd, o: &IterOptions) -> Result<Aggregation> {
    em(c, o, "aggregate.dawid_skene", false)
}

/// One-coin Dawid-Skene: one accuracy per worker instead of a confusion matrix.
pub fn one_coin_dawid_skene(c: &Crowd, o: &IterOptions) -> Result<Aggregation> {
    em(c, o, "aggregate.one_coin_dawid_skene", true)
}

fn log_sigmoid(x: f64) -> f64 {
    // log σ(x) = −softplus(−x), computed without overflow.
    -((-x).max(0.0) + (-(x.abs())).exp().ln_1p())
}

/// GLAD (Whitehill et al. 2009): P(worker i is right on task j) = σ(α_i·e^{b_j}), wrong labels
/// equally likely, N(1, 1) priors on α and b, uniform label priors — crowd-kit's
/// parametrisation. EM over the posteriors; the M-step maximises the expected log-posterior by
/// gradient ascent with backtracking (crowd-kit runs scipy's conjugate gradient for at most 25
/// steps to tolerance 1e-2, so the two follow different paths to the same fixed point: labels
/// agree and posteriors agree closely, not to rounding — see the docs page).
pub fn glad(c: &Crowd, o: &IterOptions) -> Result<Aggregation> {
    const OP: &str = "aggregate.glad";
    o.check(OP)?;
    let k = c.n_labels();
    if k < 2 {
        return Err(Error::invalid(
            OP,
            "data",
            "at least two distinct labels (GLAD models wrong answers)",
            "one",
        ));
    }
    let (offsets, order) = c.by_task();
    let log_wrong = ((k - 1) as f64).ln();
    let mut alpha = vec![1.0; c.n_workers()];
    let mut b = vec![1.0; c.n_tasks()];
    let log_prior = (1.0 / k as f64).ln();
    let e_step = |alpha: &[f64], b: &[f64]| -> Vec<f64> {
        let mut probas = vec![0.0; c.n_tasks() * k];
        for t in 0..c.n_tasks() {
            let row = &mut probas[t * k..(t + 1) * k];
            row.iter_mut().for_each(|v| *v = log_prior);
            for &r in &order[offsets[t]..offsets[t + 1]] {
                let r = r as usize;
                let x = alpha[c.worker[r] as usize] * b[t].exp();
                let (right, wrong) = (log_sigmoid(x), log_sigmoid(-x) - log_wrong);
                for (z, v) in row.iter_mut().enumerate() {
                    *v += if z == c.label[r] as usize {
                        right
                    } else {
                        wrong
                    };
                }
            }
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            row.iter_mut().for_each(|v| *v = (*v - max).exp());
            let z: f64 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= z);
        }
        probas
    };
    // Expected complete-data log-posterior (crowd-kit's Q) and its gradient.
    let q = |alpha: &[f64], b: &[f64], probas: &[f64]| -> f64 {
        let mut total = 0.0;
        for r in 0..c.rows() {
            let t = c.task[r] as usize;
            let x = alpha[c.worker[r] as usize] * b[t].exp();
            let p_right = probas[t * k + c.label[r] as usize];
            total += p_right * log_sigmoid(x) + (1.0 - p_right) * (log_sigmoid(-x) - log_wrong);
        }
        let gauss = |v: f64| -0.5 * (v - 1.0).powi(2) - 0.5 * std::f64::consts::TAU.ln();
        total
            + alpha.iter().map(|&a| gauss(a)).sum::<f64>()
            + b.iter().map(|&v| gauss(v)).sum::<f64>()
    };
    let grad = |alpha: &[f64], b: &[f64], probas: &[f64]| -> (Vec<f64>, Vec<f64>) {
        let mut ga: Vec<f64> = alpha.iter().map(|a| -(a - 1.0)).collect();
        let mut gb: Vec<f64> = b.iter().map(|v| -(v - 1.0)).collect();
        for r in 0..c.rows() {
            let (t, w) = (c.task[r] as usize, c.worker[r] as usize);
            let e = b[t].exp();
            let sigma = 1.0 / (1.0 + (-alpha[w] * e).exp());
            let d = probas[t * k + c.label[r] as usize] - sigma;
            ga[w] += d * e;
            gb[t] += d * alpha[w] * e;
        }
        (ga, gb)
    };
    let mut last = f64::NEG_INFINITY;
    let (mut iterations, mut converged) = (0, false);
    for _ in 0..o.n_iter {
        iterations += 1;
        let probas = e_step(&alpha, &b);
        // M-step: gradient ascent with backtracking, to a relative tolerance of 1e-6.
        let mut value = q(&alpha, &b, &probas);
        let mut step = 1.0;
        for _ in 0..200 {
            let (ga, gb) = grad(&alpha, &b, &probas);
            let norm2: f64 = ga.iter().chain(&gb).map(|g| g * g).sum();
            if norm2 < 1e-18 {
                break;
            }
            loop {
                let na: Vec<f64> = alpha.iter().zip(&ga).map(|(a, g)| a + step * g).collect();
                let nb: Vec<f64> = b.iter().zip(&gb).map(|(v, g)| v + step * g).collect();
                let nv = q(&na, &nb, &probas);
                if nv >= value + 1e-4 * step * norm2 {
                    let gain = nv - value;
                    alpha = na;
                    b = nb;
                    value = nv;
                    step *= 2.0;
                    if gain < 1e-6 * value.abs().max(1.0) {
                        step = 0.0;
                    }
                    break;
                }
                step *= 0.5;
                if step < 1e-12 {
                    step = 0.0;
                    break;
                }
            }
            if step == 0.0 {
                break;
            }
        }
        let per_row = value / c.rows() as f64;
        if per_row - last < o.tol {
            converged = true;
            break;
        }
        last = per_row;
    }
    let probas = e_step(&alpha, &b);
    Ok(Aggregation {
        crowd: c.clone(),
        probas,
        skills: Some(alpha),
        errors: None,
        priors: None,
        iterations,
        converged,
        ties: Ties::FirstSeen,
    })
}

/// The label aggregation methods [`aggregate_by_name`] knows, in the docs' order.
pub const LABEL_METHODS: &[&str] = &[
    "majority_vote",
    "wawa",
    "zero_based_skill",
    "dawid_skene",
    "one_coin_dawid_skene",
    "glad",
    "mace",
];

/// Aggregates `c` by the method named `method` (one of [`LABEL_METHODS`]) with crowd-kit's
/// default options: what an experiment's `crowd_<method>` arm runs.
pub fn aggregate_by_name(op: &'static str, method: &str, c: &Crowd) -> Result<Aggregation> {
    let o = IterOptions::default();
    match method {
        "majority_vote" => Ok(majority_vote(c)),
        "wawa" => Ok(wawa(c)),
        "zero_based_skill" => zero_based_skill(c, &o),
        "dawid_skene" => dawid_skene(c, &o),
        "one_coin_dawid_skene" => one_coin_dawid_skene(c, &o),
        "glad" => glad(c, &o),
        "mace" => Ok(super::mace(c, &super::MaceOptions::default())?.aggregation),
        other => Err(Error::invalid(
            op,
            "method",
            format!("one of {}", LABEL_METHODS.join(", ")),
            format!("'{other}'"),
        )),
    }
}
