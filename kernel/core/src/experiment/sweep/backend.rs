//! `exp:run{backend = ...}`: the one place that turns run options into an in-process run, a
//! local pool or a Slurm array, for every front end.

use std::path::PathBuf;
use std::time::Duration;

use polars::prelude::DataFrame;
use serde::Deserialize;

use super::{local, not_done, slurm, LocalOptions, SlurmOptions, Sweep};
use crate::experiment::{Build, Experiment, RunHooks};
use crate::{Error, Result};

const OP: &str = "experiment.run";

/// The options of `exp:run{...}`; every key but `backend` belongs to one backend, and a key of
/// another backend is an error.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunOptions {
    /// `inline` (this process), `local` (a process pool) or `slurm` (a job array).
    pub backend: Option<String>,
    /// The sweep directory (local: a temporary one when unset; slurm: required, on a
    /// filesystem the nodes share).
    pub dir: Option<String>,
    /// local: worker processes.
    pub workers: Option<usize>,
    /// local: compute threads per worker.
    pub threads: Option<usize>,
    /// slurm: wait for the array and collect (default true); false returns after `sbatch`.
    pub wait: Option<bool>,
    /// slurm: seconds between looks at the queue while waiting (default 10).
    pub poll: Option<f64>,
    pub partition: Option<String>,
    pub gres: Option<String>,
    pub time: Option<String>,
    pub array_parallelism: Option<usize>,
    pub cpus_per_task: Option<usize>,
    pub mem: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    #[serde(default)]
    pub sbatch_args: Vec<String>,
}

/// Cores from which `local` is the default backend.
pub const LOCAL_DEFAULT_CORES: usize = 16;

impl RunOptions {
    /// The backend to use: the one named, else `local` on a machine with at least
    /// [`LOCAL_DEFAULT_CORES`] cores when the experiment can leave this process (a CPU model,
    /// no per-step hooks, no inline custom arms, more than one unit), else `inline`.
    pub fn backend(
        &self,
        exp: &Experiment,
        has_hooks: bool,
        inline_arms: &[String],
    ) -> Result<&'static str> {
        match self.backend.as_deref() {
            Some("inline") => Ok("inline"),
            Some("local") => Ok("local"),
            Some("slurm") => Ok("slurm"),
            Some(other) => Err(Error::invalid(
                OP,
                "backend",
                "inline, local or slurm",
                format!("'{other}'"),
            )),
            None => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let portable = inline_arms.is_empty();
                let cpu = exp.spec.strong.model.device() == "cpu"
                    && exp.spec.weak.model.device() == "cpu";
                let pooled = self.dir.is_some() || self.workers.is_some() || self.threads.is_some();
                Ok(
                    if pooled
                        || (cores >= LOCAL_DEFAULT_CORES
                            && portable
                            && cpu
                            && !has_hooks
                            && exp.units().len() > 1)
                    {
                        "local"
                    } else {
                        "inline"
                    },
                )
            }
        }
    }

    fn slurm(&self) -> SlurmOptions {
        SlurmOptions {
            partition: self.partition.clone(),
            gres: self.gres.clone(),
            time: self.time.clone(),
            array_parallelism: self.array_parallelism,
            cpus_per_task: self.cpus_per_task,
            mem: self.mem.clone(),
            account: self.account.clone(),
            qos: self.qos.clone(),
            sbatch_args: self.sbatch_args.clone(),
        }
    }

    /// The keys set that `backend` does not take.
    fn foreign(&self, backend: &str) -> Vec<&'static str> {
        let local = [
            ("workers", self.workers.is_some()),
            ("threads", self.threads.is_some()),
        ];
        let slurm = [
            ("wait", self.wait.is_some()),
            ("poll", self.poll.is_some()),
            ("partition", self.partition.is_some()),
            ("gres", self.gres.is_some()),
            ("time", self.time.is_some()),
            ("array_parallelism", self.array_parallelism.is_some()),
            ("cpus_per_task", self.cpus_per_task.is_some()),
            ("mem", self.mem.is_some()),
            ("account", self.account.is_some()),
            ("qos", self.qos.is_some()),
            ("sbatch_args", !self.sbatch_args.is_empty()),
        ];
        let dir = [("dir", self.dir.is_some())];
        let of: Vec<(&'static str, bool)> = match backend {
            "inline" => local.iter().chain(&slurm).chain(&dir).copied().collect(),
            "local" => slurm.to_vec(),
            _ => local.to_vec(),
        };
        of.into_iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| k)
            .collect()
    }
}

/// What a run with a backend gave: results (when it ran to the end), or a submitted sweep.
pub enum Ran {
    Results(DataFrame),
    /// Slurm without waiting: the sweep's task table right after `sbatch` (`index, seed, arm,
    /// state, job, message`; `sandwich sweep status DIR` shows it later).
    Submitted(DataFrame),
}

/// A temporary sweep directory, removed when dropped unless kept (a failed run's logs and
/// finished shards stay for the error message's advice).
struct TempSweepDir(PathBuf, bool);

impl Drop for TempSweepDir {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs `exp` on the backend `o` names; `worker` runs one task (`WORKER... DIR I`).
/// `inline_arms` are the custom arms the front end holds as functions (not from
/// `spec.arms_file`): they cannot run in another process.
pub fn run_with(
    exp: &mut Experiment,
    o: &RunOptions,
    has_hooks: bool,
    inline_arms: &[String],
    worker: Vec<String>,
    build: &Build,
    hooks: RunHooks,
) -> Result<Ran> {
    let backend = o.backend(exp, has_hooks, inline_arms)?;
    if let Some(key) = o.foreign(backend).first() {
        return Err(Error::invalid(
            OP,
            "options",
            format!("options of the {backend} backend"),
            format!("'{key}', which belongs to another backend"),
        ));
    }
    if backend == "inline" {
        return exp.run(hooks).map(Ran::Results);
    }
    if !inline_arms.is_empty() {
        return Err(Error::invalid(
            OP,
            "spec.arms",
            format!("custom arms from a Lua file (spec.arms_file) for the {backend} backend: functions defined inline cannot travel to other processes"),
            format!("inline custom arms {}", inline_arms.join(", ")),
        ));
    }
    let (dir, mut temp) = match &o.dir {
        Some(d) => (PathBuf::from(d), None),
        None if backend == "local" => {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let d = std::env::temp_dir().join(format!(
                "sandwich-sweep-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            (d.clone(), Some(TempSweepDir(d, false)))
        }
        None => {
            return Err(Error::invalid(
                OP,
                "dir",
                "a sweep directory on a filesystem the cluster's nodes share",
                "none",
            ))
        }
    };
    if backend == "local" {
        let sweep = Sweep::create(exp, &dir, worker, SlurmOptions::default(), build)?;
        let lo = LocalOptions::for_machine(sweep.len(), o.workers, o.threads)?;
        let ran = local::run_local(&sweep, &lo, hooks.progress, hooks.interrupt)
            .and_then(|()| sweep.collect_into(exp).map(Ran::Results));
        if ran.is_err() {
            if let Some(t) = temp.as_mut() {
                t.1 = true;
            }
        }
        return ran;
    }
    let slurm_options = o.slurm();
    slurm_options.check()?;
    // Checked before anything is submitted: a bad value must not leave jobs behind.
    let poll = o.poll.unwrap_or(10.0);
    if !(poll.is_finite() && poll > 0.0) {
        return Err(Error::invalid(
            OP,
            "poll",
            "a positive number of seconds",
            poll,
        ));
    }
    let mut sweep = Sweep::create(exp, &dir, worker, slurm_options.clone(), build)?;
    if sweep.file.slurm != slurm_options {
        // A resumed sweep: the new submission asks for what this call says.
        sweep.file.slurm = slurm_options;
        sweep.save()?;
    }
    slurm::submit(&mut sweep)?;
    if !o.wait.unwrap_or(true) {
        let states = slurm::status(&sweep)?;
        return sweep.status_frame(&states).map(Ran::Submitted);
    }
    let states = slurm::wait(
        &sweep,
        Duration::from_secs_f64(poll),
        hooks.progress,
        hooks.interrupt,
    )?;
    let bad = not_done(&states);
    if !bad.is_empty() {
        return Err(Error::Program {
            op: OP,
            program: "sbatch".into(),
            message: format!(
                "{} of {} tasks did not finish: {}; `sandwich sweep submit {}` runs them again (done ones are kept)",
                bad.len(),
                states.len(),
                bad.join(", "),
                sweep.dir.display()
            ),
        });
    }
    sweep.collect_into(exp).map(Ran::Results)
}
