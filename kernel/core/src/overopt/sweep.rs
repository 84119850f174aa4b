//! Sweeps of optimisation strength: best-of-n for n = 1 … N from one pool of samples per
//! prompt, scored by a proxy and a gold reward.
//!
//! Gao et al. (2022, §2.2) estimate best-of-n without drawing n samples for every n: from a
//! pool of N samples per prompt, the expected reward of the proxy's choice among n of them
//! drawn without replacement is `Σ_i C(i − 1, n − 1) / C(N, n) · r_(i)`, the samples ranked
//! by proxy reward ascending (`r_(i)` is the reward of the i-th): the i-th is the best of a
//! random n-subset exactly when the subset holds it and n − 1 of the i − 1 below it. Samples
//! the proxy ties are averaged, which is the expectation under random tie-breaking. This is
//! unbiased for every n ≤ N and far cheaper than sampling n per prompt for each n.

use polars::prelude::*;

use crate::model::{GenerateOptions, Model};
use crate::train::pref_loss::best_of_n_kl;
use crate::train::{Hooks, RewardFn};
use crate::{Error, Result};

const OP: &str = "overopt.best_of_n";

/// The chance that the sample ranked `i` (0-based, ascending) of a pool of `pool` is the best of
/// a random `n`-subset: `C(i, n − 1) / C(pool, n)`, for 1 ≤ n ≤ pool (other n: all zeros).
pub fn best_of_n_weights(pool: usize, n: usize) -> Vec<f64> {
    if n == 0 || n > pool {
        return vec![0.0; pool];
    }
    // ln k! for k = 0 ..= pool, once: the weights are then O(pool).
    let mut lf = vec![0.0f64; pool + 1];
    for k in 1..=pool {
        lf[k] = lf[k - 1] + (k as f64).ln();
    }
    let ln_choose = |a: usize, b: usize| lf[a] - lf[b] - lf[a - b];
    let total = ln_choose(pool, n);
    (0..pool)
        .map(|i| {
            if i + 1 < n {
                0.0
            } else {
                (ln_choose(i, n - 1) - total).exp()
            }
        })
        .collect()
}

/// `value` in ascending order of `proxy`, the values of tied proxy scores replaced by their
/// group's mean (the expectation under random tie-breaking).
fn ranked(proxy: &[f64], value: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..proxy.len()).collect();
    order.sort_by(|&a, &b| proxy[a].total_cmp(&proxy[b]));
    let mut out = vec![0.0; order.len()];
    let mut s = 0;
    while s < order.len() {
        let mut e = s + 1;
        while e < order.len() && proxy[order[e]] == proxy[order[s]] {
            e += 1;
        }
        let mean = order[s..e].iter().map(|&i| value[i]).sum::<f64>() / (e - s) as f64;
        out[s..e].fill(mean);
        s = e;
    }
    out
}

fn dot(w: &[f64], v: &[f64]) -> f64 {
    w.iter().zip(v).map(|(a, b)| a * b).sum()
}

/// The expected `value` of the sample with the highest `proxy` among `n` drawn without
/// replacement from the pool (ties in `proxy` broken at random).
pub fn best_of_n_expectation(proxy: &[f64], value: &[f64], n: usize) -> Result<f64> {
    if proxy.len() != value.len() {
        return Err(Error::invalid(
            OP,
            "value",
            format!("{} values, one per proxy score", proxy.len()),
            value.len(),
        ));
    }
    check_ns(&[n], proxy.len())?;
    Ok(dot(
        &best_of_n_weights(proxy.len(), n),
        &ranked(proxy, value),
    ))
}

fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// The best-of-n curve from per-prompt pools of (proxy, gold) scores: one row per n with `n`,
/// `kl` (the analytic best-of-n KL, `log n − (n − 1)/n`), `d` (√kl), `proxy` and `gold` (the
/// expected rewards of the proxy's choice, averaged over prompts), `proxy_se` and `gold_se`
/// (their standard errors across prompts), and `proxy_gain`, `gold_gain` (less the n = 1
/// values, the pool means: Gao et al.'s forms are of the gain, with R(0) = 0).
pub fn best_of_n_curve(proxy: &[Vec<f64>], gold: &[Vec<f64>], ns: &[usize]) -> Result<DataFrame> {
    if proxy.is_empty() || proxy.len() != gold.len() {
        return Err(Error::invalid(
            OP,
            "pools",
            "one proxy and one gold pool per prompt, at least one prompt",
            format!("{} and {}", proxy.len(), gold.len()),
        ));
    }
    let pool = proxy[0].len();
    if let Some(i) = (0..proxy.len()).find(|&i| proxy[i].len() != pool || gold[i].len() != pool) {
        return Err(Error::invalid(
            OP,
            "pools",
            format!("pools of {pool} scores for every prompt"),
            format!("prompt {}", i + 1),
        ));
    }
    check_ns(ns, pool)?;
    // Each pool sorted once; each n's weights computed once.
    let rank = |values: &[Vec<f64>]| -> Vec<Vec<f64>> {
        proxy
            .iter()
            .zip(values)
            .map(|(p, v)| ranked(p, v))
            .collect()
    };
    let (ranked_proxy, ranked_gold) = (rank(proxy), rank(gold));
    let at = |n: usize| -> [(f64, f64); 2] {
        let w = best_of_n_weights(pool, n);
        let over = |r: &[Vec<f64>]| mean_se(&r.iter().map(|v| dot(&w, v)).collect::<Vec<_>>());
        [over(&ranked_proxy), over(&ranked_gold)]
    };
    // The n = 1 values (the pool means) through the same arithmetic, so that their gain is 0.
    let [(base_proxy, _), (base_gold, _)] = at(1);
    let mut cols: [Vec<f64>; 8] = Default::default();
    for &n in ns {
        let kl = best_of_n_kl(n);
        let [(p, p_se), (g, g_se)] = at(n);
        for (c, v) in cols.iter_mut().zip([
            kl,
            kl.sqrt(),
            p,
            g,
            p_se,
            g_se,
            p - base_proxy,
            g - base_gold,
        ]) {
            c.push(v);
        }
    }
    let names = [
        "kl",
        "d",
        "proxy",
        "gold",
        "proxy_se",
        "gold_se",
        "proxy_gain",
        "gold_gain",
    ];
    let mut columns = vec![Column::new(
        "n".into(),
        ns.iter().map(|&n| n as i64).collect::<Vec<_>>(),
    )];
    columns.extend(
        names
            .iter()
            .zip(cols)
            .map(|(name, c)| Column::new((*name).into(), c)),
    );
    DataFrame::new_infer_height(columns).map_err(Error::polars(OP, "building the curve"))
}

fn check_ns(ns: &[usize], pool: usize) -> Result<()> {
    if ns.is_empty() {
        return Err(Error::invalid(OP, "n", "at least one n", "none"));
    }
    if let Some(&n) = ns.iter().find(|&&n| n == 0 || n > pool) {
        return Err(Error::invalid(
            OP,
            "n",
            format!("values in 1 ..= pool ({pool})"),
            n,
        ));
    }
    Ok(())
}

/// Samples `pool` completions per prompt from `policy`, scores them with `proxy` and `gold`,
/// and returns [`best_of_n_curve`] for `ns` (each ≤ `pool`).
#[allow(clippy::too_many_arguments)]
pub fn best_of_n_sweep(
    policy: &Model,
    prompts: &[String],
    proxy: &RewardFn,
    gold: &RewardFn,
    ns: &[usize],
    pool: usize,
    o: &GenerateOptions,
    hooks: Hooks,
) -> Result<DataFrame> {
    crate::Options::check(o, OP)?;
    crate::validate::positive_count(OP, "pool", pool)?;
    // Every sample is generated and kept: a typo's pool of 10¹² is an error, not an OOM.
    const MAX_POOL: usize = 1 << 20;
    if pool > MAX_POOL {
        return Err(Error::invalid(
            OP,
            "pool",
            format!("at most {MAX_POOL} samples per prompt"),
            pool,
        ));
    }
    check_ns(ns, pool)?;
    crate::train::require_policy(OP, policy)?;
    if prompts.is_empty() {
        return Err(Error::invalid(OP, "prompts", "at least one prompt", "none"));
    }
    let repeated: Vec<String> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.clone(), pool))
        .collect();
    let gens = policy.generate(&repeated, o, hooks.progress, hooks.interrupt)?;
    let completions: Vec<String> = gens.into_iter().map(|g| g.completion).collect();
    let rewards = [
        RewardFn {
            name: proxy.name.clone(),
            weight: 1.0,
            f: Box::new(|p, c| (proxy.f)(p, c)),
        },
        RewardFn {
            name: gold.name.clone(),
            weight: 0.0,
            f: Box::new(|p, c| (gold.f)(p, c)),
        },
    ];
    let scores = crate::train::score_all(OP, &rewards, &repeated, &completions)?;
    let split = |s: &[f64]| -> Vec<Vec<f64>> { s.chunks(pool).map(<[f64]>::to_vec).collect() };
    best_of_n_curve(&split(&scores[0]), &split(&scores[1]), ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every n-subset of the pool, its proxy-best member's value, averaged (ties: the mean of
    /// the tied values).
    fn brute(proxy: &[f64], value: &[f64], n: usize) -> f64 {
        let m = proxy.len();
        let (mut sum, mut count) = (0.0, 0.0);
        for mask in 0u32..(1 << m) {
            if mask.count_ones() as usize != n {
                continue;
            }
            let members: Vec<usize> = (0..m).filter(|i| mask & (1 << i) != 0).collect();
            let top = members
                .iter()
                .map(|&i| proxy[i])
                .fold(f64::NEG_INFINITY, f64::max);
            let tied: Vec<f64> = members
                .iter()
                .filter(|&&i| proxy[i] == top)
                .map(|&i| value[i])
                .collect();
            sum += tied.iter().sum::<f64>() / tied.len() as f64;
            count += 1.0;
        }
        sum / count
    }

    #[test]
    fn the_estimator_equals_enumerating_every_subset() {
        let proxy = [0.3, -1.0, 2.0, 0.3, 0.9, 2.0, -0.2, 0.3];
        let value = [1.0, 4.0, -2.0, 0.5, 3.0, 7.0, -1.0, 2.5];
        for n in 1..=proxy.len() {
            let (a, b) = (
                best_of_n_expectation(&proxy, &value, n).unwrap(),
                brute(&proxy, &value, n),
            );
            assert!((a - b).abs() < 1e-12, "n = {n}: {a} vs {b}");
        }
        let w = best_of_n_weights(10, 4);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(best_of_n_expectation(&proxy, &value[..3], 1).is_err());
        assert!(best_of_n_expectation(&proxy, &value, 0).is_err());
        assert!(best_of_n_expectation(&proxy, &value, 9).is_err());
    }

    #[test]
    fn the_curve_starts_at_the_pool_mean_and_checks_its_input() {
        let proxy = vec![vec![1.0, 2.0, 3.0], vec![3.0, 1.0, 2.0]];
        let gold = vec![vec![0.0, 1.0, -1.0], vec![5.0, 1.0, 0.0]];
        let c = best_of_n_curve(&proxy, &gold, &[1, 3]).unwrap();
        let g = c.column("gold").unwrap().f64().unwrap().to_vec();
        assert!((g[0].unwrap() - 1.0).abs() < 1e-12);
        assert!((g[1].unwrap() - 2.0).abs() < 1e-12); // −1 and 5
        let gain = c.column("gold_gain").unwrap().f64().unwrap().to_vec();
        assert_eq!(gain[0], Some(0.0));
        assert!(best_of_n_curve(&proxy, &gold, &[4]).is_err());
        assert!(best_of_n_curve(&proxy, &gold[..1], &[1]).is_err());
    }
}
