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
