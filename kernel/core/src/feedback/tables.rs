//! A campaign's judgments and its raters' quality as DataFrames, in crowd-kit's columns so that
//! they go straight into `oversight`'s aggregation and agreement.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use super::spec::Kind;
use super::store::{store, Campaign};
use crate::oversight::{dawid_skene, krippendorff_alpha, Crowd, IterOptions, Level};
use crate::{write_parquet, Error, ParquetWriteOptions, Result};

/// A rater's row of the store: id, group, condition, gold seen, gold right, paused.
type RaterRow = (String, String, String, i64, i64, bool);

struct Row {
    task: String,
    worker: String,
    answer: String,
    group: String,
    condition: String,
    gold: bool,
    correct: Option<bool>,
    flagged: bool,
    served_ms: i64,
    submitted_ms: i64,
    data: String,
}

impl Campaign {
    fn rows(&self, op: &'static str) -> Result<Vec<Row>> {
        self.with_conn(|conn| {
            let mut st = conn
                .prepare(
                    "SELECT i.id, r.id, j.answer, r.grp, j.condition, j.gold, j.correct,
                            r.paused_ms IS NOT NULL, j.served_ms, j.submitted_ms, i.data
                     FROM judgments j JOIN items i ON i.pos = j.item JOIN raters r ON r.pos = j.rater
                     ORDER BY j.seq",
                )
                .map_err(store(op, "reading judgments"))?;
            let rows = st
                .query_map([], |r| {
                    Ok(Row {
                        task: r.get(0)?,
                        worker: r.get(1)?,
                        answer: r.get(2)?,
                        group: r.get(3)?,
                        condition: r.get(4)?,
                        gold: r.get(5)?,
                        correct: r.get(6)?,
                        flagged: r.get(7)?,
                        served_ms: r.get(8)?,
                        submitted_ms: r.get(9)?,
                        data: r.get(10)?,
                    })
                })
                .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(store(op, "reading judgments"))?;
            Ok(rows)
        })
    }

    /// Every judgment so far, oldest first: `task, worker, label` (`label` is an integer for
    /// `rate`; pairwise campaigns add `left, right`, the label being the winner), then
    /// `group, condition, gold, correct` (null for non-gold items), `flagged` (the rater was
    /// paused), `served_at, submitted_at` (UTC) and `seconds` between them.
    pub fn judgments(&self) -> Result<DataFrame> {
        const OP: &str = "feedback.judgments";
        let rows = self.rows(OP)?;
        let strings =
            |f: fn(&Row) -> &str| rows.iter().map(f).map(str::to_string).collect::<Vec<_>>();
        let mut cols = vec![
            Column::new("task".into(), strings(|r| &r.task)),
            Column::new("worker".into(), strings(|r| &r.worker)),
        ];
        if self.spec().kind == Kind::Rate {
            let v: Vec<i64> = rows
                .iter()
                .map(|r| r.answer.parse().unwrap_or_default())
                .collect();
            cols.push(Column::new("label".into(), v));
        } else {
            cols.push(Column::new("label".into(), strings(|r| &r.answer)));
        }
        if self.spec().kind == Kind::Pairwise {
            let side = |name: &str| -> Vec<String> {
                rows.iter()
                    .map(|r| {
                        serde_json::from_str::<BTreeMap<String, String>>(&r.data)
                            .ok()
                            .and_then(|d| d.get(name).cloned())
                            .unwrap_or_default()
                    })
                    .collect()
            };
            cols.push(Column::new("left".into(), side("left")));
            cols.push(Column::new("right".into(), side("right")));
        }
        let time = |name: &str, f: fn(&Row) -> i64| -> Result<Column> {
            Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
                .cast(&DataType::Datetime(
                    TimeUnit::Milliseconds,
                    Some(TimeZone::UTC),
                ))
                .map_err(Error::polars(OP, "building the time columns"))
        };
        cols.extend([
            Column::new("group".into(), strings(|r| &r.group)),
            Column::new("condition".into(), strings(|r| &r.condition)),
            Column::new(
                "gold".into(),
                rows.iter().map(|r| r.gold).collect::<Vec<_>>(),
            ),
            Column::new(
                "correct".into(),
                rows.iter().map(|r| r.correct).collect::<Vec<_>>(),
            ),
            Column::new(
                "flagged".into(),
                rows.iter().map(|r| r.flagged).collect::<Vec<_>>(),
            ),
            time("served_at", |r| r.served_ms)?,
            time("submitted_at", |r| r.submitted_ms)?,
            Column::new(
                "seconds".into(),
                rows.iter()
                    .map(|r| (r.submitted_ms - r.served_ms) as f64 / 1000.0)
                    .collect::<Vec<_>>(),
            ),
        ]);
        DataFrame::new(rows.len(), cols).map_err(Error::polars(OP, "building the judgments table"))
    }

    /// One row per rater: `rater, group, condition, judgments, gold_seen, gold_accuracy`
    /// (null before any gold item), `alpha` — Krippendorff's α of the non-gold judgments on the
    /// items this rater judged (nominal; interval for `rate`; null where no item has two
    /// judgments, and for `rank` and `demo`), `skill` — the rater's Dawid-Skene accuracy
    /// (Σ_c prior_c · P(says c | truth c); `label` and `pairwise` only), `median_seconds` per
    /// item, and `paused`.
    pub fn quality(&self) -> Result<DataFrame> {
        const OP: &str = "feedback.quality";
        let rows = self.rows(OP)?;
        let raters: Vec<RaterRow> = self.with_conn(|conn| {
            let mut st = conn
                .prepare("SELECT id, grp, condition, gold_seen, gold_correct, paused_ms IS NOT NULL FROM raters ORDER BY pos")
                .map_err(store(OP, "reading raters"))?;
            let r = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
                .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(store(OP, "reading raters"));
            r
        })?;
        let kind = self.spec().kind;
        // Pairwise judgments are scored as the side chosen (two classes), not as the winner's
        // value: as many classes as distinct items would make agreement and Dawid-Skene
        // meaningless (and Dawid-Skene's matrices quadratic in the number of items).
        let rows: Vec<Row> = if kind == Kind::Pairwise {
            rows.into_iter()
                .map(|mut r| {
                    let left = serde_json::from_str::<BTreeMap<String, String>>(&r.data)
                        .ok()
                        .and_then(|d| d.get("left").cloned());
                    r.answer = if left.as_deref() == Some(r.answer.as_str()) {
                        "left"
                    } else {
                        "right"
                    }
                    .into();
                    r
                })
                .collect()
        } else {
            rows
        };
        let plain: Vec<&Row> = rows.iter().filter(|r| !r.gold).collect();
        let skills = if matches!(kind, Kind::Label | Kind::Pairwise) {
            ds_skills(&plain)
        } else {
            BTreeMap::new()
        };
        let mut alpha = Vec::new();
        let mut median = Vec::new();
        let mut count = Vec::new();
        for (id, ..) in &raters {
            let mine: Vec<&Row> = rows.iter().filter(|r| &r.worker == id).collect();
            count.push(mine.len() as i64);
            let mut secs: Vec<f64> = mine
                .iter()
                .map(|r| (r.submitted_ms - r.served_ms) as f64 / 1000.0)
                .collect();
            secs.sort_by(f64::total_cmp);
            median.push((!secs.is_empty()).then(|| {
                let m = secs.len() / 2;
                if secs.len() % 2 == 1 {
                    secs[m]
                } else {
                    (secs[m - 1] + secs[m]) / 2.0
                }
            }));
            let tasks: std::collections::HashSet<&str> = mine
                .iter()
                .filter(|r| !r.gold)
                .map(|r| r.task.as_str())
                .collect();
            let around: Vec<&Row> = plain
                .iter()
                .copied()
                .filter(|r| tasks.contains(r.task.as_str()))
                .collect();
            alpha.push(rater_alpha(kind, &around));
        }
        let gold_accuracy: Vec<Option<f64>> = raters
            .iter()
            .map(|r| (r.3 > 0).then(|| r.4 as f64 / r.3 as f64))
            .collect();
        let col_s = |name: &str, f: fn(&RaterRow) -> &String| {
            Column::new(
                name.into(),
                raters.iter().map(|r| f(r).clone()).collect::<Vec<_>>(),
            )
        };
        DataFrame::new(
            raters.len(),
            vec![
                col_s("rater", |r| &r.0),
                col_s("group", |r| &r.1),
                col_s("condition", |r| &r.2),
                Column::new("judgments".into(), count),
                Column::new(
                    "gold_seen".into(),
                    raters.iter().map(|r| r.3).collect::<Vec<_>>(),
                ),
                Column::new("gold_accuracy".into(), gold_accuracy),
                Column::new("alpha".into(), alpha),
                Column::new(
                    "skill".into(),
                    raters
                        .iter()
                        .map(|r| skills.get(&r.0).copied())
                        .collect::<Vec<_>>(),
                ),
                Column::new("median_seconds".into(), median),
                Column::new(
                    "paused".into(),
                    raters.iter().map(|r| r.5).collect::<Vec<_>>(),
                ),
            ],
        )
        .map_err(Error::polars(OP, "building the quality table"))
    }

    /// Writes [`Campaign::judgments`] to a Parquet file.
    pub fn export(&self, path: impl AsRef<Path>) -> Result<()> {
        write_parquet(&self.judgments()?, path, &ParquetWriteOptions::default())
    }
}

fn frame(rows: &[&Row], numeric: bool) -> PolarsResult<DataFrame> {
    let label = if numeric {
        Column::new(
            "label".into(),
            rows.iter()
                .map(|r| r.answer.parse::<i64>().unwrap_or_default())
                .collect::<Vec<_>>(),
        )
    } else {
        Column::new(
            "label".into(),
            rows.iter().map(|r| r.answer.clone()).collect::<Vec<_>>(),
        )
    };
    DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "task".into(),
                rows.iter().map(|r| r.task.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "worker".into(),
                rows.iter().map(|r| r.worker.clone()).collect::<Vec<_>>(),
            ),
            label,
        ],
    )
}

fn rater_alpha(kind: Kind, rows: &[&Row]) -> Option<f64> {
    let level = match kind {
        Kind::Label | Kind::Pairwise => Level::Nominal,
        Kind::Rate => Level::Interval,
        Kind::Rank | Kind::Demo => return None,
    };
    let mut per_task: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        *per_task.entry(&r.task).or_default() += 1;
    }
    if !per_task.values().any(|&n| n >= 2) {
        return None;
    }
    let df = frame(rows, kind == Kind::Rate).ok()?;
    krippendorff_alpha(&df, level)
        .ok()
        .filter(|a| a.is_finite())
}

/// Each rater's Dawid-Skene accuracy: Σ_c prior_c · P(says c | truth c).
fn ds_skills(rows: &[&Row]) -> BTreeMap<String, f64> {
    let Ok(df) = frame(rows, false) else {
        return BTreeMap::new();
    };
    let Ok(crowd) = Crowd::from_frame("feedback.quality", &df) else {
        return BTreeMap::new();
    };
    let Ok(agg) = dawid_skene(&crowd, &IterOptions::default()) else {
        return BTreeMap::new();
    };
    let (Some(errors), Some(priors)) = (&agg.errors, &agg.priors) else {
        return BTreeMap::new();
    };
    let mut skill = vec![0.0; crowd.n_workers()];
    for (w, observed, p_true) in errors {
        // errors: P(observed | true) for the pairs that occur; the diagonal is observed == true.
        skill[*w as usize] += priors[*observed as usize] * p_true[*observed as usize];
    }
    (0..crowd.n_workers())
        .map(|w| (crowd.workers.name(w), skill[w]))
        .collect()
}
