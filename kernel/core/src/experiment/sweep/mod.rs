//! Sweeps: an experiment's units (an arm of a seed, [`Unit`]) run as independent tasks in other
//! processes — a Slurm job array ([`slurm`]) or a local process pool ([`local`]) — each writing
//! its shard into the sweep's directory, which `collect` puts together as [`Experiment::run`]
//! would have.
//!
//! The directory is the whole interface between the processes (a shared filesystem on a
//! cluster):
//!
//! ```text
//! DIR/sweep.json        the units, the worker command, the Slurm options and submissions
//! DIR/manifest.json     the experiment's manifest (its spec, the task's hash)
//! DIR/task.parquet      the task, when it is a DataFrame
//! DIR/arms.lua          the custom arms' file (spec.arms_file), when there is one
//! DIR/shards/I/         task I's results, items, curves (Parquet), renamed into place whole
//! DIR/failed/I.txt      why task I failed (its error), until it succeeds
//! DIR/logs/             each task's output
//! ```
//!
//! A shard is written into a temporary directory and renamed to `shards/I` (atomic on POSIX):
//! a task killed while writing leaves no shard, and a finished task is never run again.

mod backend;
pub mod local;
pub mod slurm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::arms::Supervisor;
use super::manifest::{read_manifest, Build, Manifest};
use super::runner::{Experiment, RunHooks, Shard, Unit};
use crate::{read_parquet, write_parquet, Error, ParquetReadOptions, ParquetWriteOptions, Result};

pub use backend::{run_with, Ran, RunOptions, LOCAL_DEFAULT_CORES};
pub use local::{run_local, LocalOptions};
pub use slurm::{SlurmOptions, Submission};

/// The `sweep.json` format this build writes and reads.
pub const SWEEP_FORMAT: u64 = 1;

const OP: &str = "sweep";

/// Makes the custom arms of a manifest from its arms file: `(file, arm names)` → supervisors.
/// The front end that can run the file's language (Lua) provides it.
pub type ArmLoader<'a> =
    dyn Fn(&Path, &[String]) -> Result<HashMap<String, Box<dyn Supervisor>>> + 'a;

/// `sweep.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub format: u64,
    pub name: String,
    /// Task `i` runs `units[i]`.
    pub units: Vec<Unit>,
    /// The program and its first arguments that run one task: `WORKER... DIR I`.
    pub worker: Vec<String>,
    #[serde(default)]
    pub slurm: SlurmOptions,
    /// Every `sbatch` of this sweep, oldest first.
    #[serde(default)]
    pub submissions: Vec<Submission>,
}

/// Where a task stands.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskState {
    /// Its shard is in place.
    Done,
    /// Waiting in the scheduler's queue (Slurm's job id `JOB_I`).
    Queued(String),
    /// Running under the scheduler.
    Running(String),
    /// It stopped with an error (the message it wrote).
    Failed(String),
    /// Neither done nor queued: never submitted, cancelled, pre-empted, killed or timed out.
    Missing,
}

impl TaskState {
    pub fn name(&self) -> &'static str {
        match self {
            TaskState::Done => "done",
            TaskState::Queued(_) => "queued",
            TaskState::Running(_) => "running",
            TaskState::Failed(_) => "failed",
            TaskState::Missing => "missing",
        }
    }

    /// Whether submitting the sweep again would run it.
    pub fn needs_run(&self) -> bool {
        matches!(self, TaskState::Failed(_) | TaskState::Missing)
    }
}

/// The tasks not done, as `I (state)`, for error messages.
fn not_done(states: &[TaskState]) -> Vec<String> {
    states
        .iter()
        .enumerate()
        .filter(|(_, s)| **s != TaskState::Done)
        .map(|(i, s)| format!("{i} ({})", s.name()))
        .collect()
}

/// A sweep directory.
pub struct Sweep {
    pub dir: PathBuf,
    pub file: SweepFile,
}

/// How `run_task` ended.
#[derive(Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    Ran,
    /// Its shard was already there: nothing ran.
    AlreadyDone,
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(Error::io(OP, &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io(OP, path))
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| Error::invalid(OP, "sweep", "a sweep that serializes", e))
}

/// The same experiment: the spec, the task and the build's idea of them.
fn same_experiment(a: &Manifest, b: &Manifest) -> bool {
    let spec = |m: &Manifest| serde_json::to_value(&m.spec).ok();
    a.name == b.name && spec(a) == spec(b) && a.task_hash == b.task_hash
}

impl Sweep {
    /// Writes the sweep of `exp` into `dir` (created if missing), or opens the one already
    /// there when it is the same experiment (a resumed sweep keeps its finished shards).
    /// `worker` is the command that runs one task; `arms_file` the custom arms' file, copied in.
    pub fn create(
        exp: &Experiment,
        dir: &Path,
        worker: Vec<String>,
        slurm: SlurmOptions,
        build: &Build,
    ) -> Result<Sweep> {
        if dir.as_os_str().is_empty() {
            return Err(Error::invalid(OP, "dir", "a directory path", "''"));
        }
        if worker.is_empty() {
            return Err(Error::invalid(OP, "worker", "a command", "an empty list"));
        }
        let customs = exp.custom_names();
        if !customs.is_empty() && exp.spec.arms_file.is_none() {
            return Err(Error::invalid(
                OP,
                "spec.arms",
                "custom arms from a Lua file (spec.arms_file) for runs in other processes: functions defined inline cannot travel",
                format!("inline custom arms {}", customs.join(", ")),
            ));
        }
        std::fs::create_dir_all(dir).map_err(Error::io(OP, dir))?;
        let dir = dir.canonicalize().map_err(Error::io(OP, dir))?;
        let mut manifest = exp.manifest(build)?;
        // The tasks read a copy of the arms file: the original may change, or not be on the
        // nodes.
        let arms_text = match &exp.spec.arms_file {
            Some(file) => {
                manifest.spec.arms_file = Some("arms.lua".into());
                Some(std::fs::read_to_string(file).map_err(Error::io(OP, file))?)
            }
            None => None,
        };
        if dir.join("sweep.json").exists() {
            let sweep = Sweep::open(&dir)?;
            let old = read_manifest(&dir)?;
            let old_arms = std::fs::read_to_string(dir.join("arms.lua")).ok();
            if !same_experiment(&old, &manifest) || old_arms != arms_text {
                return Err(Error::invalid(
                    OP,
                    "dir",
                    "an empty directory, or the sweep of this same experiment (to resume it)",
                    format!(
                        "{} holds the sweep of another experiment ('{}'), or of other custom arms",
                        dir.display(),
                        old.name
                    ),
                ));
            }
            return Ok(sweep);
        }
        if let Some(text) = &arms_text {
            write_atomic(&dir.join("arms.lua"), text)?;
        }
        if manifest.spec.task.dataframe_hash.is_some() {
            write_parquet(
                &exp.task,
                dir.join("task.parquet"),
                &ParquetWriteOptions::default(),
            )?;
        }
        write_atomic(&dir.join("manifest.json"), &to_json(&manifest)?)?;
        let file = SweepFile {
            format: SWEEP_FORMAT,
            name: exp.name.clone(),
            units: exp.units(),
            worker,
            slurm,
            submissions: Vec::new(),
        };
        for sub in ["shards", "failed", "logs"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(Error::io(OP, dir.join(sub)))?;
        }
        let sweep = Sweep { dir, file };
        sweep.save()?;
        Ok(sweep)
    }

    /// Opens the sweep in `dir`.
    pub fn open(dir: &Path) -> Result<Sweep> {
        let path = dir.join("sweep.json");
        let text = std::fs::read_to_string(&path).map_err(Error::io(OP, &path))?;
        let file: SweepFile = serde_json::from_str(&text)
            .map_err(|e| Error::invalid(OP, "dir", "a directory with a readable sweep.json", e))?;
        if file.format != SWEEP_FORMAT {
            return Err(Error::invalid(
                OP,
                "dir",
                format!("a sweep of format {SWEEP_FORMAT}"),
                format!("format {}", file.format),
            ));
        }
        if file.worker.is_empty() || file.units.is_empty() {
            return Err(Error::invalid(
                OP,
                "dir",
                "a sweep.json with a worker command and units",
                "an empty one",
            ));
        }
        let dir = dir.canonicalize().map_err(Error::io(OP, dir))?;
        Ok(Sweep { dir, file })
    }

    /// Rewrites `sweep.json` (after a submission).
    pub fn save(&self) -> Result<()> {
        write_atomic(&self.dir.join("sweep.json"), &to_json(&self.file)?)
    }

    pub fn len(&self) -> usize {
        self.file.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.file.units.is_empty()
    }

    fn shard_dir(&self, i: usize) -> PathBuf {
        self.dir.join("shards").join(i.to_string())
    }

    fn failed_file(&self, i: usize) -> PathBuf {
        self.dir.join("failed").join(format!("{i}.txt"))
    }

    /// The log file of task `i` run by the local pool.
    pub fn log_file(&self, i: usize) -> PathBuf {
        self.dir.join("logs").join(format!("task-{i}.log"))
    }

    fn index(&self, op: &'static str, i: usize) -> Result<&Unit> {
        self.file.units.get(i).ok_or_else(|| {
            Error::invalid(op, "index", format!("a task index in 0..{}", self.len()), i)
        })
    }

    pub fn is_done(&self, i: usize) -> bool {
        self.shard_dir(i).is_dir()
    }

    /// Each task's state, without asking a scheduler (`slurm::status` adds the queue's).
    pub fn local_states(&self) -> Vec<TaskState> {
        (0..self.len())
            .map(|i| {
                if self.is_done(i) {
                    TaskState::Done
                } else if let Ok(why) = std::fs::read_to_string(self.failed_file(i)) {
                    TaskState::Failed(why.trim().to_string())
                } else {
                    TaskState::Missing
                }
            })
            .collect()
    }

    /// The experiment of this sweep, rebuilt from its manifest (its task from `task.parquet`
    /// or regenerated; its custom arms by `load_arms` from `arms.lua`).
    pub fn experiment(&self, load_arms: &ArmLoader) -> Result<Experiment> {
        let m = read_manifest(&self.dir)?;
        let mut spec = m.spec.clone();
        let task = if spec.task.dataframe_hash.is_some() {
            spec.task.dataframe_hash = None;
            spec.task.rows = None;
            Some(read_parquet(
                self.dir.join("task.parquet"),
                &ParquetReadOptions::default(),
            )?)
        } else {
            None
        };
        // The sweep's copy, by its full path: a manifest saved from this experiment (collect's)
        // names a file that exists wherever it is read.
        if let Some(file) = &spec.arms_file {
            spec.arms_file = Some(self.dir.join(file).display().to_string());
        }
        let custom = match &spec.arms_file {
            Some(file) if !m.custom_arms.is_empty() => {
                let arms = load_arms(Path::new(file), &m.custom_arms)?;
                if let Some(missing) = m.custom_arms.iter().find(|a| !arms.contains_key(*a)) {
                    return Err(Error::invalid(
                        OP,
                        "spec.arms_file",
                        format!("a file defining custom arm '{missing}'"),
                        "no such arm in it",
                    ));
                }
                arms
            }
            _ => HashMap::new(),
        };
        let exp = Experiment::new(&m.name, spec, task, custom)?;
        if super::frame_hash(&exp.task)? != m.task_hash {
            return Err(Error::invalid(
                OP,
                "task",
                "the task of the manifest",
                "different data",
            ));
        }
        Ok(exp)
    }

    /// Runs task `i` (one unit) unless its shard is there, and writes its shard; an error is
    /// also written to `failed/I.txt` for `status`.
    pub fn run_task(
        &self,
        i: usize,
        load_arms: &ArmLoader,
        build: &Build,
        hooks: RunHooks,
    ) -> Result<TaskOutcome> {
        let unit = self.index("sweep.run_task", i)?.clone();
        if self.is_done(i) {
            return Ok(TaskOutcome::AlreadyDone);
        }
        // A failure of an earlier try no longer says how this one ends.
        let _ = std::fs::remove_file(self.failed_file(i));
        let run = || -> Result<()> {
            // Shards of two builds would be collected together without a word: refuse.
            let m = read_manifest(&self.dir)?;
            if m.sandwich != build.sandwich || m.git_revision != build.git_revision {
                return Err(Error::invalid(
                    "sweep.run_task",
                    "worker",
                    format!(
                        "the build that made the sweep (sandwich {}, git {})",
                        m.sandwich, m.git_revision
                    ),
                    format!(
                        "sandwich {}, git {} (set SANDWICH_WORKER or sweep.json's worker to that build)",
                        build.sandwich, build.git_revision
                    ),
                ));
            }
            let mut exp = self.experiment(load_arms)?;
            let shard = exp.run_unit(&unit, hooks)?;
            self.write_shard(i, &shard)
        };
        match run() {
            Ok(()) => Ok(TaskOutcome::Ran),
            Err(e) => {
                let _ = write_atomic(&self.failed_file(i), &e.with_causes());
                Err(e)
            }
        }
    }

    fn write_shard(&self, i: usize, shard: &Shard) -> Result<()> {
        let tmp = self.dir.join("shards").join(format!(
            ".tmp-{i}-{}-{}",
            std::process::id(),
            crate::utc_now_iso8601(true).replace(':', "")
        ));
        // create_dir, not create_dir_all: two writers must never share a directory.
        std::fs::create_dir(&tmp).map_err(Error::io(OP, &tmp))?;
        let opts = ParquetWriteOptions::default();
        write_parquet(&shard.results, tmp.join("results.parquet"), &opts)?;
        write_parquet(&shard.items, tmp.join("items.parquet"), &opts)?;
        write_parquet(&shard.curves, tmp.join("curves.parquet"), &opts)?;
        for (k, c) in shard.service_curves.iter().enumerate() {
            write_parquet(c, tmp.join(format!("service-{k:03}.parquet")), &opts)?;
        }
        let to = self.shard_dir(i);
        match std::fs::rename(&tmp, &to) {
            Ok(()) => Ok(()),
            // Another run of the same task finished first: its shard stands.
            Err(_) if to.is_dir() => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(())
            }
            Err(e) => Err(Error::io(OP, &to)(e)),
        }
    }

    fn read_shard(&self, i: usize) -> Result<Shard> {
        let dir = self.shard_dir(i);
        let opts = ParquetReadOptions::default();
        let read = |name: &str| read_parquet(dir.join(name), &opts);
        let mut services: Vec<(String, DataFrame)> = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(Error::io(OP, &dir))? {
            let name = entry.map_err(Error::io(OP, &dir))?.file_name();
            let name = name.to_string_lossy().to_string();
            if name.starts_with("service-") {
                services.push((name.clone(), read(&name)?));
            }
        }
        services.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Shard {
            unit: self.file.units[i].clone(),
            results: read("results.parquet")?,
            items: read("items.parquet")?,
            curves: read("curves.parquet")?,
            service_curves: services.into_iter().map(|(_, d)| d).collect(),
        })
    }

    /// Every shard put together: the experiment with the results, items and curves a run in
    /// one process gives. Every task must be done.
    pub fn collect(&self, load_arms: &ArmLoader) -> Result<Experiment> {
        let mut exp = self.experiment(load_arms)?;
        self.collect_into(&mut exp)?;
        Ok(exp)
    }

    /// Puts every shard together into `exp` (this sweep's experiment); returns its results.
    pub fn collect_into(&self, exp: &mut Experiment) -> Result<DataFrame> {
        let pending = not_done(&self.local_states());
        if !pending.is_empty() {
            return Err(Error::invalid(
                "sweep.collect",
                "dir",
                "a sweep whose tasks are all done (`sandwich sweep status DIR`; `submit` runs the rest)",
                format!("{} of {} tasks not done: {}", pending.len(), self.len(), pending.join(", ")),
            ));
        }
        if exp.units() != self.file.units {
            return Err(Error::invalid(
                "sweep.collect",
                "experiment",
                "the experiment of this sweep",
                "another one (its arms or seeds differ)",
            ));
        }
        let shards = (0..self.len())
            .map(|i| self.read_shard(i))
            .collect::<Result<Vec<_>>>()?;
        exp.assemble(shards)
    }

    /// `index, seed, arm, state, job, message`: one row per task.
    pub fn status_frame(&self, states: &[TaskState]) -> Result<DataFrame> {
        let (mut job, mut message) = (Vec::new(), Vec::new());
        for s in states {
            job.push(match s {
                TaskState::Queued(j) | TaskState::Running(j) => Some(j.clone()),
                _ => None,
            });
            message.push(match s {
                TaskState::Failed(m) => Some(m.clone()),
                _ => None,
            });
        }
        df!(
            "index" => (0..self.len() as i64).collect::<Vec<_>>(),
            "seed" => self.file.units.iter().map(|u| u.seed as i64).collect::<Vec<_>>(),
            "arm" => self.file.units.iter().map(|u| u.arm.clone()).collect::<Vec<_>>(),
            "state" => states.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "job" => job,
            "message" => message,
        )
        .map_err(Error::polars("sweep.status", "building the table"))
    }
}
