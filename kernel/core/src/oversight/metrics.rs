//! The sandwich metrics: performance gap recovered with bootstrap intervals, and the usual
//! classification metrics (as scikit-learn defines them).

use crate::{Error, Result, Rng};

/// Runs `f(0..n)` on all cores, results in order.
pub fn parallel_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.max(1));
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(n))
                        .map(f)
                        .collect::<Vec<T>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a bootstrap worker panicked"))
            .collect()
    })
}

/// Runs `f(block_index, block)` over `data` cut into blocks of `block` elements, spread over
/// the cores in contiguous runs; returns what each block returned, in block order.
pub(crate) fn parallel_blocks_mut<T: Send>(
    data: &mut [f64],
    block: usize,
    f: impl Fn(usize, &mut [f64]) -> T + Sync,
) -> Vec<T> {
    let mut blocks: Vec<(usize, &mut [f64])> = data.chunks_mut(block.max(1)).enumerate().collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(blocks.len().max(1));
    let per = blocks.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        while !blocks.is_empty() {
            let rest = blocks.split_off(per.min(blocks.len()));
            let mine = std::mem::replace(&mut blocks, rest);
            let f = &f;
            handles
                .push(s.spawn(move || mine.into_iter().map(|(i, b)| f(i, b)).collect::<Vec<T>>()));
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a block worker panicked"))
            .collect()
    })
}

/// Linear-interpolation quantile of sorted values (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Performance gap recovered: `(x − weak) / (ceiling − weak)`.
pub fn pgr(weak: f64, x: f64, ceiling: f64) -> Result<f64> {
    if !(weak.is_finite() && x.is_finite() && ceiling.is_finite()) {
        return Err(Error::invalid(
            "metrics.pgr",
            "weak/strong/ceiling",
            "finite numbers",
            format!("{weak}, {x}, {ceiling}"),
        ));
    }
    if ceiling == weak {
        return Err(Error::invalid(
            "metrics.pgr",
            "ceiling",
            "a ceiling different from the weak performance (no gap to recover)",
            ceiling,
        ));
    }
    Ok((x - weak) / (ceiling - weak))
}

/// A point estimate with a bootstrap percentile interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    /// Resamples whose statistic was undefined (e.g. no gap) and were skipped.
    pub skipped: usize,
}

/// Bootstrap over `n` items: `stat(indices)` on the full set and on `n_boot` resamples with
/// replacement (seeded per resample, computed in parallel); the interval holds `level` of them.
///
/// With `groups` (one group index per item, e.g. the seed a test item was scored under) the
/// resampling is two-stage, as for items nested in runs: draw as many groups as there are, with
/// replacement, then within each drawn group as many of its items as it has, with replacement.
/// The interval then carries the run-to-run variation as well as the item-to-item one. One group
/// is the plain item bootstrap (the same draws).
pub fn bootstrap(
    n: usize,
    n_boot: usize,
    level: f64,
    seed: u64,
    groups: Option<&[usize]>,
    stat: impl Fn(&[usize]) -> Option<f64> + Sync,
) -> Result<Interval> {
    const OP: &str = "metrics.bootstrap";
    check_bootstrap(OP, n, n_boot, level)?;
    let resampler = Resampler::new(n, groups)?;
    let all: Vec<usize> = (0..n).collect();
    let estimate = stat(&all).ok_or_else(|| {
        Error::invalid(
            OP,
            "data",
            "data on which the statistic is defined",
            "undefined on the full data",
        )
    })?;
    let draws = parallel_map(n_boot, |b| stat(&resampler.draw(seed, b)));
    Ok(Interval::percentile(estimate, &draws, level))
}

/// Checks a bootstrap's settings: data to resample, at least one resample, a level in (0, 1).
pub fn check_bootstrap(op: &'static str, n: usize, n_boot: usize, level: f64) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid(op, "data", "at least one row", "none"));
    }
    if n_boot == 0 || !(0.0 < level && level < 1.0) {
        return Err(Error::invalid(
            op,
            "n_boot/level",
            "n_boot ≥ 1 and 0 < level < 1",
            format!("{n_boot}, {level}"),
        ));
    }
    Ok(())
}

impl Interval {
    /// The percentile interval of bootstrap draws: `None` (the statistic was undefined on that
    /// resample) and non-finite draws are counted as skipped, never silently dropped.
    pub fn percentile(estimate: f64, draws: &[Option<f64>], level: f64) -> Interval {
        let mut v: Vec<f64> = draws
            .iter()
            .flatten()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        let skipped = draws.len() - v.len();
        v.sort_by(f64::total_cmp);
        Interval {
            estimate,
            lower: quantile(&v, (1.0 - level) / 2.0),
            upper: quantile(&v, 1.0 - (1.0 - level) / 2.0),
            skipped,
        }
    }
}

/// How a bootstrap draws its resamples: items with replacement, or (with groups) groups with
/// replacement and then items with replacement within each drawn group.
pub struct Resampler {
    /// The items of each group, groups in order of first appearance.
    members: Vec<Vec<usize>>,
}

impl Resampler {
    pub fn new(n: usize, groups: Option<&[usize]>) -> Result<Self> {
        let members = match groups {
            Some(g) if g.len() != n => {
                return Err(Error::invalid(
                    "metrics.bootstrap",
                    "group",
                    format!("one group per item ({n})"),
                    g.len(),
                ))
            }
            Some(g) => {
                let mut slot = std::collections::HashMap::new();
                let mut members: Vec<Vec<usize>> = Vec::new();
                for (i, g) in g.iter().enumerate() {
                    let k = *slot.entry(*g).or_insert_with(|| {
                        members.push(Vec::new());
                        members.len() - 1
                    });
                    members[k].push(i);
                }
                members
            }
            None => vec![(0..n).collect()],
        };
        Ok(Self { members })
    }

    /// Resample `b` of the stream `seed`: the same indices for the same (seed, b).
    pub fn draw(&self, seed: u64, b: usize) -> Vec<usize> {
        let mut rng = Rng::derived(seed, b as u64);
        let mut idx = Vec::new();
        if let [only] = self.members.as_slice() {
            idx.extend((0..only.len()).map(|_| only[rng.below(only.len())]));
        } else {
            for _ in 0..self.members.len() {
                let group = &self.members[rng.below(self.members.len())];
                idx.extend((0..group.len()).map(|_| group[rng.below(group.len())]));
            }
        }
        idx
    }
}

fn mean_at(x: &[f64], idx: &[usize]) -> f64 {
    idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64
}

/// PGR with a bootstrap interval from per-item scores (e.g. 0/1 correctness) of the weak model,
/// the protocol under test and the ceiling, on the same items; `groups` as for [`bootstrap`].
pub fn pgr_bootstrap(
    weak: &[f64],
    x: &[f64],
    ceiling: &[f64],
    n_boot: usize,
    level: f64,
    seed: u64,
    groups: Option<&[usize]>,
) -> Result<Interval> {
    if weak.len() != x.len() || x.len() != ceiling.len() {
        return Err(Error::invalid(
            "metrics.pgr",
            "data",
            "three score columns of one length",
            format!("{}, {}, {}", weak.len(), x.len(), ceiling.len()),
        ));
    }
    pgr(
        mean_at(weak, &(0..weak.len()).collect::<Vec<_>>()),
        0.0,
        1.0,
    )?; // validates finiteness
    bootstrap(weak.len(), n_boot, level, seed, groups, |idx| {
        let (w, s, c) = (mean_at(weak, idx), mean_at(x, idx), mean_at(ceiling, idx));
        (c != w).then(|| (s - w) / (c - w))
    })
}

/// Binary classification metrics of scores against 0/1 truth.
fn check_binary(op: &'static str, truth: &[f64]) -> Result<()> {
    if truth.is_empty() {
        return Err(Error::invalid(op, "data", "at least one row", "none"));
    }
    if let Some(v) = truth.iter().find(|&&t| t != 0.0 && t != 1.0) {
        return Err(Error::invalid(op, "truth", "0/1 labels", v));
    }
    Ok(())
}

/// Area under the ROC curve (ties in the score count half), as `roc_auc_score`.
pub fn auroc(truth: &[f64], score: &[f64]) -> Result<f64> {
    const OP: &str = "metrics.auroc";
    check_binary(OP, truth)?;
    if let Some(s) = score.iter().find(|s| !s.is_finite()) {
        return Err(Error::invalid(OP, "score", "finite scores", s));
    }
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    // Mann-Whitney U with average ranks for ties.
    let mut ranks = vec![0.0; score.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && score[order[j + 1]] == score[order[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            ranks[o] = r;
        }
        i = j + 1;
    }
    let pos = truth.iter().filter(|&&t| t == 1.0).count() as f64;
    let neg = truth.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return Err(Error::invalid(
            OP,
            "truth",
            "both classes present",
            "one class",
        ));
    }
    let rank_sum: f64 = truth
        .iter()
        .zip(&ranks)
        .filter(|(t, _)| **t == 1.0)
        .map(|(_, r)| r)
        .sum();
    Ok((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Mean squared error of probabilities against 0/1 truth (`brier_score_loss`).
pub fn brier(truth: &[f64], prob: &[f64]) -> Result<f64> {
    check_binary("metrics.brier", truth)?;
    if let Some(p) = prob.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(Error::invalid(
            "metrics.brier",
            "score",
            "probabilities in [0, 1]",
            p,
        ));
    }
    Ok(truth
        .iter()
        .zip(prob)
        .map(|(t, p)| (p - t).powi(2))
        .sum::<f64>()
        / truth.len() as f64)
}

/// Expected calibration error with `bins` equal-width bins of the predicted probability:
/// Σ_b (n_b / n) · |mean(truth_b) − mean(prob_b)| (a probability of exactly 1 falls in the last bin).
pub fn ece(truth: &[f64], prob: &[f64], bins: usize) -> Result<f64> {
    const OP: &str = "metrics.ece";
    check_binary(OP, truth)?;
    if bins == 0 {
        return Err(Error::invalid(OP, "bins", "a positive integer", 0));
    }
    if let Some(p) = prob.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(Error::invalid(OP, "prob", "probabilities in [0, 1]", p));
    }
    let mut n = vec![0.0; bins];
    let mut t_sum = vec![0.0; bins];
    let mut p_sum = vec![0.0; bins];
    for (t, p) in truth.iter().zip(prob) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        n[b] += 1.0;
        t_sum[b] += t;
        p_sum[b] += p;
    }
    let total = truth.len() as f64;
    Ok((0..bins)
        .filter(|&b| n[b] > 0.0)
        .map(|b| n[b] / total * (t_sum[b] / n[b] - p_sum[b] / n[b]).abs())
        .sum())
}

/// Accuracy and macro-averaged F1 of predicted against true labels (any label type, compared as
/// strings); F1 of a class that is never predicted nor true is left out, one with zero precision
/// and recall counts 0 (scikit-learn's `zero_division=0`).
pub fn accuracy_f1(truth: &[String], pred: &[String]) -> Result<(f64, f64)> {
    const OP: &str = "metrics.classification";
    if truth.len() != pred.len() || truth.is_empty() {
        return Err(Error::invalid(
            OP,
            "data",
            "truth and prediction columns of one, non-zero length",
            format!("{} and {}", truth.len(), pred.len()),
        ));
    }
    let acc = truth.iter().zip(pred).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64;
    let mut classes: Vec<&String> = truth.iter().chain(pred).collect();
    classes.sort();
    classes.dedup();
    let f1s: Vec<f64> = classes
        .iter()
        .map(|c| {
            let tp = truth
                .iter()
                .zip(pred)
                .filter(|(t, p)| t == c && p == c)
                .count() as f64;
            let fp = truth
                .iter()
                .zip(pred)
                .filter(|(t, p)| t != c && p == c)
                .count() as f64;
            let fn_ = truth
                .iter()
                .zip(pred)
                .filter(|(t, p)| t == c && p != c)
                .count() as f64;
            if tp == 0.0 {
                0.0
            } else {
                2.0 * tp / (2.0 * tp + fp + fn_)
            }
        })
        .collect();
    Ok((acc, f1s.iter().sum::<f64>() / f1s.len() as f64))
}
