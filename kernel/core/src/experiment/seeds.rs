//! PGR over seeds from a long results frame: the engine's own table (`Experiment::pgr`) and
//! the one for experiments whose arms measure something other than test accuracy — the gold
//! reward of a policy optimised against each overseer's reward model, say — through one code
//! path, so every PGR the workbench prints has the same estimate and interval.

use std::collections::HashMap;

use polars::prelude::*;
use serde::Deserialize;

use crate::oversight::{ratio_interval, Bounds, SeedInterval};
use crate::{column_floats, column_strings, Error, Result};

fn weak() -> String {
    "weak".into()
}
fn ceiling() -> String {
    "ceiling".into()
}
fn level() -> f64 {
    0.95
}

/// What [`pgr_table`] reads: which metric, which arms are the references, at what level.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgrOptions {
    /// The `metric` whose values are compared (higher is better).
    pub metric: String,
    /// The arm PGR starts from (0).
    #[serde(default = "weak")]
    pub baseline: String,
    /// The arm PGR ends at (1).
    #[serde(default = "ceiling")]
    pub ceiling: String,
    /// Only rows of this `split` (the frame must then have the column).
    #[serde(default)]
    pub split: Option<String>,
    /// The arms to report, in order (default: every other arm, in order of first appearance).
    #[serde(default)]
    pub arms: Option<Vec<String>>,
    /// Coverage of the intervals, in (0, 1).
    #[serde(default = "level")]
    pub level: f64,
}

impl crate::Options for PgrOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(Error::invalid(
                op,
                "level",
                "a number in (0, 1)",
                self.level,
            ));
        }
        if self.baseline == self.ceiling {
            return Err(Error::invalid(
                op,
                "ceiling",
                "an arm other than the baseline",
                format!("'{}'", self.ceiling),
            ));
        }
        Ok(())
    }
}

/// Per arm, seed → value of the rows that match `metric` (and `split`).
struct PerSeed {
    values: HashMap<String, HashMap<i64, f64>>,
    /// Arms in order of first appearance.
    order: Vec<String>,
}

impl PerSeed {
    fn read(op: &'static str, r: &DataFrame, metric: &str, split: Option<&str>) -> Result<Self> {
        let arms = column_strings(op, r, "arm")?;
        let metrics = column_strings(op, r, "metric")?;
        let seeds = column_floats(op, r, "seed")?;
        let values = column_floats(op, r, "value")?;
        let splits = match split {
            Some(_) => Some(column_strings(op, r, "split")?),
            None => None,
        };
        let mut out = PerSeed {
            values: HashMap::new(),
            order: Vec::new(),
        };
        for i in 0..arms.len() {
            if metrics[i] != metric
                || splits
                    .as_ref()
                    .is_some_and(|s| Some(s[i].as_str()) != split)
            {
                continue;
            }
            if seeds[i].fract() != 0.0 {
                return Err(Error::invalid(
                    op,
                    "results",
                    "integer seeds",
                    format!("{} in row {}", seeds[i], i + 1),
                ));
            }
            let by_seed = out.values.entry(arms[i].clone()).or_insert_with(|| {
                out.order.push(arms[i].clone());
                HashMap::new()
            });
            if by_seed.insert(seeds[i] as i64, values[i]).is_some() {
                return Err(Error::invalid(
                    op,
                    "results",
                    format!("one '{metric}' value per arm and seed"),
                    format!("two for arm '{}', seed {}", arms[i], seeds[i]),
                ));
            }
        }
        Ok(out)
    }

    /// `arm`'s values at `seeds`, in that order; a missing seed is an error, never dropped.
    fn at(&self, op: &'static str, arm: &str, seeds: &[i64]) -> Result<Vec<f64>> {
        let by_seed = self.values.get(arm).ok_or_else(|| {
            Error::invalid(
                op,
                "arm",
                format!("one of the arms with results: {}", self.order.join(", ")),
                format!("'{arm}'"),
            )
        })?;
        seeds
            .iter()
            .map(|s| {
                by_seed.get(s).copied().ok_or_else(|| {
                    Error::invalid(
                        op,
                        "results",
                        format!("every arm measured on the baseline's seeds {seeds:?}"),
                        format!("arm '{arm}' without seed {s}"),
                    )
                })
            })
            .collect()
    }
}

/// PGR of each arm against `baseline` and `ceiling` from a long results frame `arm, seed,
/// metric, value` (and `split`, when `o.split` is given): the ratio of the mean gains over
/// seeds, `mean(arm − baseline) / mean(ceiling − baseline)`, with Fieller's interval at
/// `o.level`. The seeds are the baseline's (ascending); every reported arm and the ceiling
/// must have a value at each. Columns `arm, pgr, lower, upper, seeds, inverted_seeds, note`:
/// `inverted_seeds` counts seeds where the ceiling is not above the baseline (kept, not
/// dropped); `note` says when there is no finite interval.
pub fn pgr_table(results: &DataFrame, o: &PgrOptions) -> Result<DataFrame> {
    const OP: &str = "experiment.pgr";
    crate::Options::check(o, OP)?;
    let per = PerSeed::read(OP, results, &o.metric, o.split.as_deref())?;
    if per.order.is_empty() {
        return Err(Error::invalid(
            OP,
            "metric",
            format!("rows with metric '{}'", o.metric),
            "none",
        ));
    }
    let mut seeds: Vec<i64> = per
        .values
        .get(&o.baseline)
        .ok_or_else(|| {
            Error::invalid(
                OP,
                "baseline",
                format!("one of the arms with results: {}", per.order.join(", ")),
                format!("'{}'", o.baseline),
            )
        })?
        .keys()
        .copied()
        .collect();
    seeds.sort_unstable();
    let base = per.at(OP, &o.baseline, &seeds)?;
    let ceiling = per.at(OP, &o.ceiling, &seeds)?;
    let den: Vec<f64> = ceiling.iter().zip(&base).map(|(c, b)| c - b).collect();
    let inverted = den.iter().filter(|d| **d <= 0.0).count() as i64;
    let arms: Vec<String> = match &o.arms {
        Some(a) => a.clone(),
        None => per
            .order
            .iter()
            .filter(|a| **a != o.baseline && **a != o.ceiling)
            .cloned()
            .collect(),
    };
    let mut t = IntervalTable::default();
    for arm in &arms {
        let v = per.at(OP, arm, &seeds)?;
        let num: Vec<f64> = v.iter().zip(&base).map(|(a, b)| a - b).collect();
        t.push(arm, ratio_interval(&num, &den, o.level)?, inverted);
    }
    t.frame(OP, "pgr")
}

/// Rows of an interval table.
#[derive(Default)]
pub(super) struct IntervalTable {
    arm: Vec<String>,
    est: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
    seeds: Vec<i64>,
    inverted: Vec<i64>,
    note: Vec<String>,
}

impl IntervalTable {
    pub(super) fn push(&mut self, arm: &str, r: SeedInterval, inverted: i64) {
        self.arm.push(arm.to_string());
        self.est.push(r.estimate);
        self.lower.push(r.lower);
        self.upper.push(r.upper);
        self.seeds.push(r.n as i64);
        self.inverted.push(inverted);
        let mut note = r.bounds.note().to_string();
        if inverted > 0 && r.bounds == Bounds::Finite {
            note = format!("{inverted} seed(s) with the ceiling not above the baseline");
        }
        self.note.push(note);
    }

    pub(super) fn frame(self, op: &'static str, estimate: &str) -> Result<DataFrame> {
        DataFrame::new_infer_height(vec![
            Column::new("arm".into(), self.arm),
            Column::new(estimate.into(), self.est),
            Column::new("lower".into(), self.lower),
            Column::new("upper".into(), self.upper),
            Column::new("seeds".into(), self.seeds),
            Column::new("inverted_seeds".into(), self.inverted),
            Column::new("note".into(), self.note),
        ])
        .map_err(Error::polars(op, "building the table"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> DataFrame {
        df!(
            "arm" => ["weak", "ceiling", "a", "weak", "ceiling", "a", "weak", "ceiling", "a"],
            "seed" => [1i64, 1, 1, 2, 2, 2, 3, 3, 3],
            "metric" => ["gold"; 9],
            "value" => [0.0, 1.0, 0.5, 0.1, 0.9, 0.6, 0.2, 1.2, 0.5],
        )
        .unwrap()
    }

    fn opts() -> PgrOptions {
        PgrOptions {
            metric: "gold".into(),
            baseline: weak(),
            ceiling: ceiling(),
            split: None,
            arms: None,
            level: 0.95,
        }
    }

    #[test]
    fn pgr_is_the_ratio_of_mean_gains_with_fiellers_interval() {
        let t = pgr_table(&results(), &opts()).unwrap();
        let col = |c: &str| t.column(c).unwrap().f64().unwrap().get(0).unwrap();
        // mean(a − weak) = (0.5 + 0.5 + 0.3)/3; mean(ceiling − weak) = (1 + 0.8 + 1)/3.
        assert!((col("pgr") - 1.3 / 2.8).abs() < 1e-12);
        let direct = ratio_interval(&[0.5, 0.5, 0.3], &[1.0, 0.8, 1.0], 0.95).unwrap();
        assert!((col("lower") - direct.lower).abs() < 1e-12);
        assert!((col("upper") - direct.upper).abs() < 1e-12);
    }

    #[test]
    fn a_missing_seed_or_arm_is_an_error_not_a_misalignment() {
        let r = results().slice(0, 8); // arm a lacks seed 3
        let e = pgr_table(&r, &opts()).unwrap_err().to_string();
        assert!(e.contains("arm 'a' without seed 3"), "{e}");
        let mut o = opts();
        o.baseline = "nobody".into();
        assert!(pgr_table(&results(), &o).is_err());
        o = opts();
        o.metric = "accuracy".into();
        assert!(pgr_table(&results(), &o).is_err());
    }
}
