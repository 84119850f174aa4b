//! Inter-rater agreement: Cohen's κ (as scikit-learn), Fleiss' κ (as statsmodels),
//! Krippendorff's α (as the `krippendorff` package), percent agreement, accuracy against gold.

use std::collections::HashMap;

use polars::prelude::*;

use super::crowd::Crowd;
use crate::{column_floats, Error, Result};

/// Weighting of Cohen's κ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KappaWeights {
    None,
    Linear,
    Quadratic,
}

/// Cohen's κ of two label sequences (`sklearn.metrics.cohen_kappa_score`): labels are the sorted
/// union, weights use their positions.
pub fn cohen_kappa(a: &[String], b: &[String], weights: KappaWeights) -> Result<f64> {
    const OP: &str = "agreement.cohen_kappa";
    if a.len() != b.len() || a.is_empty() {
        return Err(Error::invalid(
            OP,
            "data",
            "two rating columns of the same, non-zero length",
            format!("{} and {}", a.len(), b.len()),
        ));
    }
    let mut labels: Vec<&String> = a.iter().chain(b).collect();
    labels.sort();
    labels.dedup();
    let index: HashMap<&String, usize> = labels.iter().enumerate().map(|(i, l)| (*l, i)).collect();
    let k = labels.len();
    let mut confusion = vec![0.0; k * k];
    for (x, y) in a.iter().zip(b) {
        confusion[index[x] * k + index[y]] += 1.0;
    }
    let rows: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| confusion[i * k + j]).sum())
        .collect();
    let cols: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| confusion[i * k + j]).sum())
        .collect();
    let total: f64 = rows.iter().sum();
    let w = |i: usize, j: usize| -> f64 {
        let d = i as f64 - j as f64;
        match weights {
            KappaWeights::None => f64::from(u8::from(i != j)),
            KappaWeights::Linear => d.abs(),
            KappaWeights::Quadratic => d * d,
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            observed += w(i, j) * confusion[i * k + j];
            expected += w(i, j) * rows[i] * cols[j] / total;
        }
    }
    if expected == 0.0 {
        return Err(Error::invalid(
            OP,
            "data",
            "ratings that use more than one label (κ is undefined otherwise)",
            "a single label",
        ));
    }
    Ok(1.0 - observed / expected)
}

/// Counts of each label per task (tasks × labels).
fn counts(c: &Crowd) -> Vec<f64> {
    let k = c.n_labels();
    let mut n = vec![0.0; c.n_tasks() * k];
    for r in 0..c.rows() {
        n[c.task[r] as usize * k + c.label[r] as usize] += 1.0;
    }
    n
}

/// Fleiss' κ (`statsmodels.stats.inter_rater.fleiss_kappa`, method "fleiss"): every task must
/// have the same number of labels.
pub fn fleiss_kappa(c: &Crowd) -> Result<f64> {
    const OP: &str = "agreement.fleiss_kappa";
    let k = c.n_labels();
    let n = counts(c);
    let raters: Vec<f64> = n.chunks(k).map(|r| r.iter().sum()).collect();
    let m = raters[0];
    if let Some(t) = raters.iter().position(|&r| r != m) {
        return Err(Error::invalid(
            OP,
            "data",
            format!("the same number of labels on every task ({m} on the first)"),
            format!("{} on task {}", raters[t], c.tasks.name(t)),
        ));
    }
    if m < 2.0 {
        return Err(Error::invalid(
            OP,
            "data",
            "at least two labels per task",
            m,
        ));
    }
    let tasks = c.n_tasks() as f64;
    let p: Vec<f64> = (0..k)
        .map(|j| n.iter().skip(j).step_by(k).sum::<f64>() / (tasks * m))
        .collect();
    let p_bar = n
        .chunks(k)
        .map(|r| (r.iter().map(|x| x * x).sum::<f64>() - m) / (m * (m - 1.0)))
        .sum::<f64>()
        / tasks;
    let p_e: f64 = p.iter().map(|x| x * x).sum();
    if p_e == 1.0 {
        return Err(Error::invalid(
            OP,
            "data",
            "more than one label in use (κ is undefined otherwise)",
            "a single label",
        ));
    }
    Ok((p_bar - p_e) / (1.0 - p_e))
}

/// Mean over tasks with two or more labels of the share of agreeing label pairs.
pub fn percent_agreement(c: &Crowd) -> Result<f64> {
    let k = c.n_labels();
    let n = counts(c);
    let per_task: Vec<f64> = n
        .chunks(k)
        .filter_map(|r| {
            let m: f64 = r.iter().sum();
            (m >= 2.0).then(|| r.iter().map(|x| x * (x - 1.0)).sum::<f64>() / (m * (m - 1.0)))
        })
        .collect();
    if per_task.is_empty() {
        return Err(Error::invalid(
            "agreement.percent",
            "data",
            "a task with at least two labels",
            "none",
        ));
    }
    Ok(per_task.iter().sum::<f64>() / per_task.len() as f64)
}

/// Level of measurement of Krippendorff's α.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Nominal,
    Ordinal,
    Interval,
}

/// Krippendorff's α over `task, worker, label`, or a ratings table `task, worker, score`
/// (missing labels are simply absent rows). Ordinal and interval levels need numeric labels;
/// fractional scores are allowed. Units with fewer than two labels are not pairable and drop
/// out, as in the `krippendorff` package.
pub fn krippendorff_alpha(df: &DataFrame, level: Level) -> Result<f64> {
    const OP: &str = "agreement.krippendorff_alpha";
    let col = if df.column("label").is_err() && df.column("score").is_ok() {
        "score"
    } else {
        "label"
    };
    let fractional = df.column(col).is_ok_and(|c| c.dtype().is_float());
    // Fractional values are not keys the crowd encoding takes: code them by their rank among
    // the distinct values (which is the order the codes need) and keep the values aside.
    let (prepared, ranked) = if fractional || col == "score" {
        let v = column_floats(OP, df, col)?;
        if let Some(r) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid(
                OP,
                "data",
                format!("finite numbers in '{col}'"),
                format!("{} in row {}", v[r], r + 1),
            ));
        }
        let mut distinct = v.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let ranks: Vec<i64> = v
            .iter()
            .map(|x| distinct.partition_point(|d| d < x) as i64)
            .collect();
        let mut cols = Vec::new();
        for name in ["task", "worker"] {
            cols.push(
                df.column(name)
                    .map_err(|_| {
                        Error::invalid(
                            OP,
                            "data",
                            format!("a column '{name}'"),
                            format!("columns {:?}", df.get_column_names()),
                        )
                    })?
                    .clone(),
            );
        }
        cols.push(Column::new("label".into(), ranks));
        let frame =
            DataFrame::new_infer_height(cols).map_err(Error::polars(OP, "reading the ratings"))?;
        (Some(frame), Some(distinct))
    } else {
        (None, None)
    };
    let c = Crowd::from_frame(OP, prepared.as_ref().unwrap_or(df))?;
    let k = c.n_labels();
    let values: Vec<f64> = match (level, ranked) {
        (Level::Nominal, _) => (0..k).map(|i| i as f64).collect(),
        (_, Some(distinct)) => distinct,
        _ => {
            let v = column_floats(OP, df, "label")?;
            let mut by_code = vec![f64::NAN; k];
            for (r, &l) in c.label.iter().enumerate() {
                by_code[l as usize] = v[r];
            }
            by_code
        }
    };
    let n = counts(&c);
    // Coincidence matrix.
    let mut o = vec![0.0; k * k];
    for row in n.chunks(k) {
        let m: f64 = row.iter().sum();
        if m < 2.0 {
            continue;
        }
        for a in 0..k {
            for b in 0..k {
                let pairs = if a == b {
                    row[a] * (row[a] - 1.0)
                } else {
                    row[a] * row[b]
                };
                o[a * k + b] += pairs / (m - 1.0);
            }
        }
    }
    let marg: Vec<f64> = (0..k).map(|a| (0..k).map(|b| o[a * k + b]).sum()).collect();
    let total: f64 = marg.iter().sum();
    if total == 0.0 {
        return Err(Error::invalid(
            OP,
            "data",
            "a task with at least two labels",
            "none",
        ));
    }
    let delta = |a: usize, b: usize| -> f64 {
        match level {
            Level::Nominal => f64::from(u8::from(a != b)),
            Level::Interval => (values[a] - values[b]).powi(2),
            Level::Ordinal => {
                // Codes are sorted by value, so the ranks between a and b are a..=b.
                let (lo, hi) = (a.min(b), a.max(b));
                let s: f64 = marg[lo..=hi].iter().sum();
                (s - (marg[lo] + marg[hi]) / 2.0).powi(2)
            }
        }
    };
    let (mut d_o, mut d_e) = (0.0, 0.0);
    for a in 0..k {
        for b in 0..k {
            let d = delta(a, b);
            d_o += o[a * k + b] * d;
            d_e += marg[a] * marg[b] * d;
        }
    }
    if d_e == 0.0 {
        return Err(Error::invalid(
            OP,
            "data",
            "more than one label value among pairable tasks (α is undefined otherwise)",
            "a single value",
        ));
    }
    Ok(1.0 - (total - 1.0) * d_o / d_e)
}

/// Each worker's accuracy on the gold tasks: `worker, accuracy, n`.
pub fn worker_accuracy(labels: &DataFrame, gold: &DataFrame) -> Result<DataFrame> {
    const OP: &str = "agreement.worker_accuracy";
    let joined = labels
        .clone()
        .lazy()
        .join(
            gold.clone().lazy().select([col("task"), col("true_label")]),
            [col("task")],
            [col("task")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by_stable([col("worker")])
        .agg([
            col("label")
                .cast(DataType::String)
                .eq(col("true_label").cast(DataType::String))
                .cast(DataType::Float64)
                .mean()
                .alias("accuracy"),
            len().cast(DataType::Int64).alias("n"),
        ])
        .sort(["worker"], Default::default())
        .collect()
        .map_err(Error::polars(
            OP,
            "joining labels with gold (columns task, worker, label and task, true_label)",
        ))?;
    if joined.height() == 0 {
        return Err(Error::invalid(
            OP,
            "gold",
            "gold labels for tasks that workers labelled",
            "no overlap",
        ));
    }
    Ok(joined)
}
