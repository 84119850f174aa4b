//! Pairwise comparisons `worker, left, right, label` (label = the winner; anything else is a tie):
//! Bradley-Terry scores, win rates, and Chatbot-Arena-style ratings with bootstrap intervals.

use polars::prelude::*;

use super::crowd::{factorize, Keys};
use crate::{Error, Result, Rng};

/// Comparisons, encoded: items sorted by value; `winner` is 0 (left), 1 (right) or 2 (tie).
#[derive(Clone, Debug)]
pub struct Comparisons {
    pub items: Keys,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    pub winner: Vec<u8>,
}

impl Comparisons {
    pub fn from_frame(op: &'static str, df: &DataFrame) -> Result<Self> {
        if df.height() == 0 {
            return Err(Error::invalid(
                op,
                "data",
                "at least one comparison",
                "an empty table",
            ));
        }
        // Items are the values of left and right; a label that is neither side is a tie.
        let stacked = df
            .column("left")
            .and_then(|l| {
                let mut s = l.as_materialized_series().clone();
                s.append(df.column("right")?.as_materialized_series())?;
                Ok(s)
            })
            .map_err(|_| {
                Error::invalid(
                    op,
                    "data",
                    "columns 'left' and 'right' of one type",
                    format!("columns {:?}", df.get_column_names()),
                )
            })?;
        let frame =
            DataFrame::new_infer_height(vec![stacked.with_name("key".into()).into_column()])
                .map_err(Error::polars(op, "reading comparisons"))?;
        let (items, codes) = factorize(op, &frame, "key")?;
        let n = df.height();
        let (left, right) = codes.split_at(n);
        if let Some(row) = left.iter().zip(right).position(|(l, r)| l == r) {
            return Err(Error::invalid(
                op,
                "data",
                "comparisons of two different items (left ≠ right)",
                format!(
                    "'{}' against itself in row {}",
                    items.name(left[row] as usize),
                    row + 1
                ),
            ));
        }
        let label = df.column("label").map_err(|_| {
            Error::invalid(
                op,
                "data",
                "a column 'label' (the winner)",
                format!("columns {:?}", df.get_column_names()),
            )
        })?;
        let winners: Vec<Option<u32>> = match &items {
            Keys::Str(v) => {
                let s = label
                    .cast(&DataType::String)
                    .map_err(Error::polars(op, "reading label"))?;
                s.str()
                    .expect("cast")
                    .iter()
                    .map(|x| {
                        x.and_then(|x| v.binary_search_by(|k| k.as_str().cmp(x)).ok())
                            .map(|i| i as u32)
                    })
                    .collect()
            }
            Keys::Int(v) => {
                let s = label
                    .cast(&DataType::Int64)
                    .map_err(Error::polars(op, "reading label"))?;
                s.i64()
                    .expect("cast")
                    .iter()
                    .map(|x| x.and_then(|x| v.binary_search(&x).ok()).map(|i| i as u32))
                    .collect()
            }
        };
        let winner = (0..n)
            .map(|i| match winners[i] {
                Some(c) if c == left[i] => 0,
                Some(c) if c == right[i] => 1,
                _ => 2,
            })
            .collect();
        Ok(Self {
            items,
            left: left.to_vec(),
            right: right.to_vec(),
            winner,
        })
    }

    fn n(&self) -> usize {
        self.items.len()
    }

    /// wins[i][j]: times i beat j, ties counting half each way when `ties` is set.
    fn wins(&self, rows: impl Iterator<Item = usize>, ties: bool) -> Vec<f64> {
        let n = self.n();
        let mut m = vec![0.0; n * n];
        for r in rows {
            let (l, rt) = (self.left[r] as usize, self.right[r] as usize);
            match self.winner[r] {
                0 => m[l * n + rt] += 1.0,
                1 => m[rt * n + l] += 1.0,
                _ if ties => {
                    m[l * n + rt] += 0.5;
                    m[rt * n + l] += 0.5;
                }
                _ => {}
            }
        }
        m
    }
}

/// Bradley-Terry strengths by the MM algorithm (Hunter 2004, crowd-kit's update): p_i ∝
/// wins_i / Σ_j n_ij / (p_i + p_j), normalised to sum 1, from p = 1, until Σ|Δp| < tol or
/// `n_iter` iterations. Items that never win get 0.
pub fn bt_scores(c: &Comparisons, rows: &[usize], ties: bool, n_iter: usize, tol: f64) -> Vec<f64> {
    let n = c.n();
    let m = c.wins(rows.iter().copied(), ties);
    let wins: Vec<f64> = (0..n).map(|i| (0..n).map(|j| m[i * n + j]).sum()).collect();
    let mut p = vec![1.0; n];
    let mut prev: Option<Vec<f64>> = None;
    for _ in 0..n_iter {
        let mut next = vec![0.0; n];
        for j in 0..n {
            let mut z = 0.0;
            for i in 0..n {
                let t = m[i * n + j] + m[j * n + i];
                if t > 0.0 {
                    z += t / (p[i] + p[j]);
                }
            }
            next[j] = if z > 0.0 { wins[j] / z } else { 0.0 };
        }
        let s: f64 = next.iter().sum();
        if s > 0.0 {
            next.iter_mut().for_each(|v| *v /= s);
        }
        let done = prev
            .as_ref()
            .is_some_and(|q| q.iter().zip(&next).map(|(a, b)| (a - b).abs()).sum::<f64>() < tol);
        p = next.clone();
        prev = Some(next);
        if done {
            break;
        }
    }
    p
}

/// `label, score`.
pub fn scores_frame(c: &Comparisons, scores: &[f64]) -> Result<DataFrame> {
    DataFrame::new_infer_height(vec![
        c.items.all("label"),
        Column::new("score".into(), scores.to_vec()),
    ])
    .map_err(Error::polars(
        "aggregate.bradley_terry",
        "building the scores table",
    ))
}

/// Per item: `item, wins, losses, ties, n, win_rate` with win_rate = (wins + ties/2) / n.
pub fn win_rates(c: &Comparisons) -> Result<DataFrame> {
    let n = c.n();
    let (mut w, mut l, mut t) = (vec![0i64; n], vec![0i64; n], vec![0i64; n]);
    for r in 0..c.left.len() {
        let (a, b) = (c.left[r] as usize, c.right[r] as usize);
        match c.winner[r] {
            0 => {
                w[a] += 1;
                l[b] += 1;
            }
            1 => {
                w[b] += 1;
                l[a] += 1;
            }
            _ => {
                t[a] += 1;
                t[b] += 1;
            }
        }
    }
    let total: Vec<i64> = (0..n).map(|i| w[i] + l[i] + t[i]).collect();
    let rate: Vec<f64> = (0..n)
        .map(|i| (w[i] as f64 + 0.5 * t[i] as f64) / total[i].max(1) as f64)
        .collect();
    DataFrame::new_infer_height(vec![
        c.items.all("item"),
        Column::new("wins".into(), w),
        Column::new("losses".into(), l),
        Column::new("ties".into(), t),
        Column::new("n".into(), total),
        Column::new("win_rate".into(), rate),
    ])
    .map_err(Error::polars("metrics.win_rates", "building the table"))
}

/// Ratings on the Elo scale, as Chatbot Arena reports its Bradley-Terry fit:
/// 1000 + 400·log10(p_i / geometric mean of p), ties as half a win each way.
fn ratings(c: &Comparisons, rows: &[usize]) -> Vec<f64> {
    let p = bt_scores(c, rows, true, 10_000, 1e-12);
    let logs: Vec<f64> = p.iter().map(|v| v.max(1e-300).log10()).collect();
    let mean = logs.iter().sum::<f64>() / logs.len() as f64;
    logs.iter().map(|l| 1000.0 + 400.0 * (l - mean)).collect()
}

/// `item, rating, lower, upper`: the ratings and their bootstrap percentile interval (battles
/// resampled with replacement, `n_boot` times, seeded, in parallel).
pub fn bt_ratings(c: &Comparisons, n_boot: usize, level: f64, seed: u64) -> Result<DataFrame> {
    super::metrics::check_bootstrap("metrics.bt_ratings", c.left.len(), n_boot, level)?;
    let all: Vec<usize> = (0..c.left.len()).collect();
    let point = ratings(c, &all);
    let boots = super::metrics::parallel_map(n_boot, |b| {
        let mut rng = Rng::derived(seed, b as u64);
        let rows: Vec<usize> = (0..all.len()).map(|_| rng.below(all.len())).collect();
        ratings(c, &rows)
    });
    let (lo_q, hi_q) = ((1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0);
    let mut lower = Vec::with_capacity(c.n());
    let mut upper = Vec::with_capacity(c.n());
    for i in 0..c.n() {
        let mut v: Vec<f64> = boots.iter().map(|r| r[i]).collect();
        v.sort_by(f64::total_cmp);
        lower.push(super::metrics::quantile(&v, lo_q));
        upper.push(super::metrics::quantile(&v, hi_q));
    }
    DataFrame::new_infer_height(vec![
        c.items.all("item"),
        Column::new("rating".into(), point),
        Column::new("lower".into(), lower),
        Column::new("upper".into(), upper),
    ])
    .map_err(Error::polars("metrics.bt_ratings", "building the table"))
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Options of [`bradley_terry`], with crowd-kit's defaults.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BtOptions {
    /// The most MM iterations (positive).
    pub n_iter: usize,
    /// Stop when Σ|Δp| falls below this.
    pub tol: f64,
    /// Count a tie (label neither left nor right) as half a win for each side.
    pub ties: bool,
}

impl Default for BtOptions {
    fn default() -> Self {
        Self {
            n_iter: 100,
            tol: 1e-5,
            ties: false,
        }
    }
}

impl crate::Options for BtOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        crate::validate::positive_count(op, "n_iter", self.n_iter)?;
        crate::validate::non_negative(op, "tol", self.tol)
    }
}

impl crate::Options for NoisyBtOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        crate::validate::positive_count(op, "n_iter", self.n_iter)?;
        crate::validate::non_negative(op, "regularization_ratio", self.regularization_ratio)
    }
}

/// Bradley-Terry scores of every item from all comparisons (crowd-kit's `BradleyTerry`), as
/// `label, score`.
pub fn bradley_terry(c: &Comparisons, o: &BtOptions) -> Result<DataFrame> {
    const OP: &str = "aggregate.bradley_terry";
    crate::Options::check(o, OP)?;
    let rows: Vec<usize> = (0..c.left.len()).collect();
    scores_frame(c, &bt_scores(c, &rows, o.ties, o.n_iter, o.tol))
}

/// Options of [`noisy_bradley_terry`], with crowd-kit's defaults.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoisyBtOptions {
    /// The most L-BFGS iterations (positive).
    pub n_iter: usize,
    /// Weight of the penalty that keeps scores near their anchor.
    pub regularization_ratio: f64,
    /// Seed of the uniform [0, 1) starting point (crowd-kit draws it from numpy's global state).
    pub seed: u64,
}

impl Default for NoisyBtOptions {
    fn default() -> Self {
        Self {
            n_iter: 1000,
            regularization_ratio: 1e-5,
            seed: 0,
        }
    }
}

/// A noisy Bradley-Terry fit as frames: item `scores` (`label, score`), and per-worker
/// `skills` (`worker, skill`) and `biases` (`worker, bias`).
#[derive(Clone, Debug)]
pub struct NoisyBtFrames {
    pub scores: DataFrame,
    pub skills: DataFrame,
    pub biases: DataFrame,
    pub iterations: usize,
}

/// Noisy Bradley-Terry on a comparisons frame `worker, left, right, label`, from a uniform
/// [0, 1) starting point as crowd-kit draws it (from our generator, seeded by `o.seed`).
pub fn noisy_bradley_terry(df: &DataFrame, o: &NoisyBtOptions) -> Result<NoisyBtFrames> {
    const OP: &str = "aggregate.noisy_bradley_terry";
    crate::Options::check(o, OP)?;
    let c = Comparisons::from_frame(OP, df)?;
    let (workers, codes) = worker_codes(OP, df)?;
    let mut rng = Rng::new(o.seed);
    let x0: Vec<f64> = (0..1 + c.items.len() + 2 * workers.len())
        .map(|_| rng.uniform())
        .collect();
    let fit = noisy_bt(
        &c,
        &codes,
        workers.len(),
        &x0,
        o.regularization_ratio,
        o.n_iter,
    )?;
    let per_worker = |name: &str, v: Vec<f64>| {
        DataFrame::new_infer_height(vec![workers.all("worker"), Column::new(name.into(), v)])
            .map_err(Error::polars(OP, "building the per-worker frame"))
    };
    Ok(NoisyBtFrames {
        scores: scores_frame(&c, &fit.scores)?,
        skills: per_worker("skill", fit.skills)?,
        biases: per_worker("bias", fit.biases)?,
        iterations: fit.iterations,
    })
}

/// A fitted noisy Bradley-Terry model.
#[derive(Clone, Debug)]
pub struct NoisyBt {
    /// σ(s) per item.
    pub scores: Vec<f64>,
    /// σ(q) per worker: the chance of picking the left item when not judging on merit.
    pub biases: Vec<f64>,
    /// σ(γ) per worker: the chance of judging on merit.
    pub skills: Vec<f64>,
    pub iterations: usize,
}

/// Worker ids of a comparisons table, sorted, and each row's index.
pub fn worker_codes(op: &'static str, df: &DataFrame) -> Result<(Keys, Vec<u32>)> {
    factorize(op, df, "worker")
}

/// Noisy Bradley-Terry (crowd-kit's `NoisyBradleyTerry`): worker w either judges by the item
/// scores (with probability σ(γ_w)) or by a side bias σ(y·q_w):
/// P(y) = σ(γ_w)·σ(y(s_i − s_j)) + (1 − σ(γ_w))·σ(y·q_w), y = +1 when the left item won.
/// Minimises the negative log-likelihood plus `reg_ratio` × −Σ_k [ln σ(x0 − s_k) + ln σ(s_k − x0)]
/// (a penalty keeping scores near a free anchor x0) from the starting point
/// `x0` = [anchor, scores, biases, skills] by L-BFGS. crowd-kit 1.4.2 *adds* that log-term
/// instead, which makes its objective unbounded below (spreading the scores apart always lowers
/// it); its answer is wherever scipy's stopping rule halts. We penalise, so the problem has a
/// minimum.
/// Returns (scores σ(s), biases σ(q), skills σ(γ)) and the iterations used.
pub fn noisy_bt(
    c: &Comparisons,
    workers: &[u32],
    n_workers: usize,
    x0: &[f64],
    reg_ratio: f64,
    max_iter: usize,
) -> Result<NoisyBt> {
    const OP: &str = "aggregate.noisy_bradley_terry";
    let l = c.n();
    if x0.len() != 1 + l + 2 * n_workers {
        return Err(Error::invalid(
            OP,
            "init",
            format!("{} starting values", 1 + l + 2 * n_workers),
            x0.len(),
        ));
    }
    let f = |x: &[f64], grad: &mut [f64]| -> f64 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let (s, rest) = x[1..].split_at(l);
        let (q, gamma) = rest.split_at(n_workers);
        let mut total = 0.0;
        for (r, &w) in workers.iter().enumerate() {
            let (i, j, w) = (c.left[r] as usize, c.right[r] as usize, w as usize);
            let y = if c.winner[r] == 0 { 1.0 } else { -1.0 };
            let a = sigmoid(gamma[w]);
            let u = sigmoid(y * (s[i] - s[j]));
            let v = sigmoid(y * q[w]);
            let p = a * u + (1.0 - a) * v;
            total += p.ln();
            let inv = -1.0 / p; // d(−ln P)/dP
            let du = a * u * (1.0 - u) * y;
            grad[1 + i] += inv * du;
            grad[1 + j] -= inv * du;
            grad[1 + l + w] += inv * (1.0 - a) * v * (1.0 - v) * y;
            grad[1 + l + n_workers + w] += inv * a * (1.0 - a) * (u - v);
        }
        let mut reg = 0.0;
        for (k, &sk) in s.iter().enumerate() {
            let (lo, hi) = (sigmoid(x[0] - sk), sigmoid(sk - x[0]));
            reg += lo.ln() + hi.ln();
            // d/ds_k [ln σ(x0 − s_k) + ln σ(s_k − x0)] = −(1 − lo) + (1 − hi); the term is
            // subtracted (a penalty), see the doc comment.
            grad[1 + k] -= reg_ratio * (-(1.0 - lo) + (1.0 - hi));
            grad[0] -= reg_ratio * ((1.0 - lo) - (1.0 - hi));
        }
        -total - reg_ratio * reg
    };
    let (x, iterations) = lbfgs(x0.to_vec(), f, max_iter);
    let scores = x[1..1 + l].iter().map(|&v| sigmoid(v)).collect();
    let biases = x[1 + l..1 + l + n_workers]
        .iter()
        .map(|&v| sigmoid(v))
        .collect();
    let skills = x[1 + l + n_workers..].iter().map(|&v| sigmoid(v)).collect();
    Ok(NoisyBt {
        scores,
        biases,
        skills,
        iterations,
    })
}

/// Limited-memory BFGS (m = 10) with a backtracking Armijo line search, until the gradient's
/// largest component is below 1e-9, the objective stops moving, or `max_iter` iterations.
fn lbfgs(
    mut x: Vec<f64>,
    f: impl Fn(&[f64], &mut [f64]) -> f64,
    max_iter: usize,
) -> (Vec<f64>, usize) {
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::new();
    let mut iterations = 0;
    for _ in 0..max_iter {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) < 1e-9 {
            break;
        }
        iterations += 1;
        // Two-loop recursion for the direction −H·g.
        let mut d: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * s.iter().zip(&d).map(|(a, b)| a * b).sum::<f64>();
            d.iter_mut().zip(y).for_each(|(di, yi)| *di -= a * yi);
            alphas.push(a);
        }
        if let Some((s, y, _)) = history.back() {
            let gamma = s.iter().zip(y).map(|(a, b)| a * b).sum::<f64>()
                / y.iter().map(|v| v * v).sum::<f64>();
            d.iter_mut().for_each(|v| *v *= gamma);
        }
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * y.iter().zip(&d).map(|(p, q)| p * q).sum::<f64>();
            d.iter_mut().zip(s).for_each(|(di, si)| *di += (a - b) * si);
        }
        let mut slope: f64 = g.iter().zip(&d).map(|(a, b)| a * b).sum();
        if slope >= 0.0 {
            d = g.iter().map(|v| -v).collect();
            slope = -g.iter().map(|v| v * v).sum::<f64>();
            history.clear();
        }
        let mut step = 1.0;
        let mut g_new = vec![0.0; n];
        let (x_new, f_new) = loop {
            let cand: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + step * b).collect();
            let fc = f(&cand, &mut g_new);
            if fc.is_finite() && fc <= fx + 1e-4 * step * slope {
                break (cand, fc);
            }
            step *= 0.5;
            if step < 1e-16 {
                return (x, iterations);
            }
        };
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy: f64 = s.iter().zip(&y).map(|(a, b)| a * b).sum();
        if sy > 1e-12 {
            if history.len() == 10 {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        let moved = (fx - f_new).abs();
        x = x_new;
        g = g_new;
        fx = f_new;
        if moved < 1e-14 * fx.abs().max(1.0) {
            break;
        }
    }
    (x, iterations)
}
