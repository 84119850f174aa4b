//! What reproduces an experiment — its manifest — and saving, loading and rerunning one.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::arms::Supervisor;
use super::report::render_html;
use super::runner::{Experiment, RunHooks};
use super::spec::Spec;
use crate::{column_floats, read_csv, write_csv, CsvReadOptions, CsvWriteOptions, Error, Result};

/// The manifest format this engine writes and reads. Format 1 was the Lua engine's (until
/// sandwich 0.1.x of 2026-11-27): its manifests had no `format` key.
pub const MANIFEST_FORMAT: u64 = 2;

/// The build that ran an experiment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Build {
    pub sandwich: String,
    pub git_revision: String,
}

impl Build {
    /// This build; `git_revision` comes from the front end (which records it at build time).
    pub fn current(git_revision: &str) -> Self {
        Build {
            sandwich: env!("CARGO_PKG_VERSION").to_string(),
            git_revision: git_revision.to_string(),
        }
    }
}

/// Everything that reproduces a run: the spec (a DataFrame task by its content hash), the
/// custom arms' names (their code is passed again on rerun), the build and the device.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u64,
    pub name: String,
    pub spec: Spec,
    pub custom_arms: Vec<String>,
    pub task_hash: String,
    pub task_rows: usize,
    /// The version and git revision that wrote it.
    pub sandwich: String,
    pub git_revision: String,
    pub device: String,
    pub created: String,
}

impl Experiment {
    /// The manifest of this experiment.
    pub fn manifest(&self, build: &Build) -> Result<Manifest> {
        let mut custom: Vec<String> = self.custom_names();
        custom.sort_by_key(|n| self.spec.arms.iter().position(|a| a == n));
        Ok(Manifest {
            format: MANIFEST_FORMAT,
            name: self.name.clone(),
            spec: self.spec.clone(),
            custom_arms: custom,
            task_hash: super::frame_hash(&self.task)?,
            task_rows: self.task.height(),
            sandwich: build.sandwich.clone(),
            git_revision: build.git_revision.clone(),
            device: self.spec.strong.model.device().to_string(),
            created: crate::utc_now_iso8601(false),
        })
    }

    /// Writes `manifest.json`, `results.csv`, `items.csv`, `curves.csv` and `report.html` into
    /// `dir` (created if missing).
    pub fn save(&self, dir: &Path, build: &Build) -> Result<()> {
        const OP: &str = "experiment.save";
        let results = self.results.as_ref().ok_or_else(|| {
            Error::invalid(
                OP,
                "experiment",
                "an experiment that has run (exp:run())",
                "not run yet",
            )
        })?;
        if dir.as_os_str().is_empty() {
            return Err(Error::invalid(OP, "dir", "a directory path", "''"));
        }
        std::fs::create_dir_all(dir).map_err(Error::io(OP, dir))?;
        let manifest = serde_json::to_string_pretty(&self.manifest(build)?)
            .map_err(|e| Error::invalid(OP, "spec", "a spec that serializes", e))?;
        std::fs::write(dir.join("manifest.json"), manifest + "\n")
            .map_err(Error::io(OP, dir.join("manifest.json")))?;
        let csv = CsvWriteOptions::default();
        write_csv(results, dir.join("results.csv"), &csv)?;
        if let Some(items) = &self.items {
            write_csv(items, dir.join("items.csv"), &csv)?;
        }
        if let Some(curves) = &self.curves {
            write_csv(curves, dir.join("curves.csv"), &csv)?;
        }
        self.write_report(&dir.join("report.html"))?;
        Ok(())
    }

    /// Writes the self-contained HTML report to `path`.
    pub fn write_report(&self, path: &Path) -> Result<()> {
        let html = render_html(self)?;
        std::fs::write(path, html).map_err(Error::io("experiment.write_report", path))
    }
}

/// Reads `dir/manifest.json`. A manifest of the Lua engine (format 1) is an error naming the
/// version that wrote it: its numbers came from another split, head initialisation, hardening
/// and interval, so this engine cannot reproduce them.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    const OP: &str = "experiment.rerun";
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(Error::io(OP, &path))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Error::invalid(OP, "dir", "a manifest.json that is JSON", e))?;
    match value.get("format").and_then(Value::as_u64) {
        Some(MANIFEST_FORMAT) => {}
        Some(other) => {
            return Err(Error::invalid(
                OP,
                "dir",
                format!("a manifest of format {MANIFEST_FORMAT}"),
                format!("format {other} (written by a newer sandwich?)"),
            ))
        }
        None => {
            let by = value
                .get("sandwich")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let rev = value
                .get("git_revision")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            return Err(Error::invalid(
                OP,
                "dir",
                format!(
                    "a manifest of format {MANIFEST_FORMAT}; this one was written by the Lua experiment engine of sandwich {by} (git {rev}), whose split, head initialisation, auxiliary-loss hardening and intervals differ: rerun it with that build"
                ),
                "format 1",
            ));
        }
    }
    serde_json::from_value(value)
        .map_err(|e| Error::invalid(OP, "dir", "a readable manifest.json", e))
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

/// Runs a saved experiment again: the same spec, task (a DataFrame task is passed again and
/// must hash the same) and custom arms (by name). Returns the experiment and whether every
/// value equals the saved `results.csv`.
pub fn rerun(
    dir: &Path,
    task: Option<DataFrame>,
    custom: HashMap<String, Box<dyn Supervisor>>,
    hooks: RunHooks,
) -> Result<(Experiment, bool)> {
    const OP: &str = "experiment.rerun";
    let m = read_manifest(dir)?;
    if let Some(missing) = m.custom_arms.iter().find(|a| !custom.contains_key(*a)) {
        return Err(Error::invalid(
            OP,
            "supervise",
            format!("the supervise function of custom arm '{missing}'"),
            "none",
        ));
    }
    let mut spec = m.spec.clone();
    let task = match (&spec.task.dataframe_hash, task) {
        (Some(hash), Some(df)) => {
            let got = super::frame_hash(&df)?;
            if &got != hash {
                return Err(Error::invalid(
                    OP,
                    "task",
                    format!("the task with hash {hash}"),
                    format!("hash {got}"),
                ));
            }
            spec.task.dataframe_hash = None;
            spec.task.rows = None;
            Some(df)
        }
        (Some(_), None) => {
            return Err(Error::invalid(
                OP,
                "task",
                "the task DataFrame the experiment ran on",
                "nothing",
            ))
        }
        (None, Some(_)) => {
            return Err(Error::invalid(
                OP,
                "task",
                "no task (the manifest regenerates its built-in task)",
                "a DataFrame",
            ))
        }
        (None, None) => None,
    };
    let mut exp = Experiment::new(&m.name, spec, task, custom)?;
    if super::frame_hash(&exp.task)? != m.task_hash {
        return Err(Error::invalid(
            OP,
            "task",
            "the task of the manifest",
            "different data",
        ));
    }
    let results = exp.run(hooks)?;
    let saved = read_csv(dir.join("results.csv"), &CsvReadOptions::default())?;
    let identical = saved.height() == results.height()
        && same(
            &column_floats(OP, &results, "value")?,
            &column_floats(OP, &saved, "value")?,
        );
    Ok((exp, identical))
}
