//! A sweep as one Slurm job array: `sbatch --array` over the tasks that still need a run, the
//! queue read back from `squeue`, `scancel` for the sweep's jobs. Slurm is driven through its
//! commands (what a user types), so any cluster whose login node has them works; nothing here
//! talks to `slurmctld` directly.

use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Sweep, TaskState};
use crate::{Error, Interrupt, Progress, Result};

const OP: &str = "sweep.slurm";

/// What `sbatch` is asked for, per array task.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlurmOptions {
    /// `--partition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `--gres`, e.g. `gpu:1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gres: Option<String>,
    /// `--time` per task, e.g. `01:00:00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// At most this many tasks at once (`--array=...%N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_parallelism: Option<usize>,
    /// `--cpus-per-task`; each task computes on that many threads (1 when unset, Slurm's
    /// default allocation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<usize>,
    /// `--mem`, e.g. `8G`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// `--account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `--qos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// Further `sbatch` arguments, as given (`--constraint=a100`, `--requeue`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sbatch_args: Vec<String>,
}

impl SlurmOptions {
    /// Checks values `sbatch` would only reject after submission.
    pub fn check(&self) -> Result<()> {
        if self.array_parallelism == Some(0) {
            return Err(Error::invalid(OP, "array_parallelism", "at least 1", 0));
        }
        if self.cpus_per_task == Some(0) {
            return Err(Error::invalid(OP, "cpus_per_task", "at least 1", 0));
        }
        Ok(())
    }
}

/// One `sbatch` of a sweep.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    pub job_id: String,
    pub indexes: Vec<usize>,
    pub submitted: String,
}

/// Slurm's `--array` list of `indexes` (sorted, distinct): runs as ranges, `0-3,5,7-9`, then
/// `%N` for the parallelism limit.
pub fn array_spec(indexes: &[usize], parallelism: Option<usize>) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indexes.len() {
        let start = indexes[i];
        let mut end = start;
        while i + 1 < indexes.len() && indexes[i + 1] == end + 1 {
            i += 1;
            end = indexes[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    let mut spec = parts.join(",");
    if let Some(n) = parallelism {
        spec.push_str(&format!("%{n}"));
    }
    spec
}

/// A word for a POSIX shell, in single quotes.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The batch script of every array task: the worker on the sweep directory and the task's
/// index, with as many compute threads as CPUs Slurm gave the task.
pub fn script(sweep: &Sweep) -> String {
    let worker: Vec<String> = sweep.file.worker.iter().map(|w| quote(w)).collect();
    format!(
        "#!/bin/sh\n\
         # Written by sandwich for the sweep '{name}'; sbatch's options are on its command line\n\
         # (sweep.json keeps them).\n\
         export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n\
         exec {worker} {dir} \"$SLURM_ARRAY_TASK_ID\"\n",
        name = sweep.file.name.replace('\n', " "),
        worker = worker.join(" "),
        dir = quote(&sweep.dir.display().to_string()),
    )
}

/// Runs `program args`; its stdout, or an error with its stderr.
fn output(op: &'static str, program: &str, args: &[String]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Error::Program {
            op,
            program: program.to_string(),
            message: format!("cannot run it ({e}): is Slurm installed and on PATH?"),
        })?;
    if !out.status.success() {
        return Err(Error::Program {
            op,
            program: format!("{program} {}", args.join(" ")),
            message: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// The indexes of an array task id as `squeue` prints it: `12_3`, or a pending range
/// `12_[3-5,7%2]` (where `-r` does not expand it). `None` for other jobs' ids.
fn array_indexes(id: &str) -> Option<(&str, Vec<usize>)> {
    let (job, rest) = id.split_once('_')?;
    if let Ok(i) = rest.parse::<usize>() {
        return Some((job, vec![i]));
    }
    let list = rest.strip_prefix('[')?.strip_suffix(']')?;
    let list = list.split('%').next()?;
    let mut out = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => out.push(part.parse().ok()?),
        }
    }
    Some((job, out))
}

/// States in which a task is still Slurm's business (`--states`: a user's `SQUEUE_STATES`
/// must not make finished jobs look queued).
const ACTIVE_STATES: &str = "PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED,REQUEUED,REQUEUE_HOLD,RESIZING,SIGNALING,STAGE_OUT";

/// The sweep's array tasks in Slurm's queue: index → (job id `JOB_I`, running?).
fn queue(sweep: &Sweep) -> Result<std::collections::HashMap<usize, (String, bool)>> {
    const F: &str = "sweep.status";
    let mut out = std::collections::HashMap::new();
    if sweep.file.submissions.is_empty() {
        return Ok(out);
    }
    // The whole queue (-r: one line per array task): asking for job ids Slurm has purged is
    // an error, and a sweep's jobs are few against any queue.
    let text = output(
        F,
        "squeue",
        &[
            "-h".into(),
            "-r".into(),
            format!("--states={ACTIVE_STATES}"),
            "-o".into(),
            "%i|%T".into(),
        ],
    )?;
    let ours: std::collections::HashSet<&str> = sweep
        .file
        .submissions
        .iter()
        .map(|s| s.job_id.as_str())
        .collect();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let unreadable = || Error::Program {
            op: F,
            program: "squeue".into(),
            message: format!("a line it printed is not `JOBID_INDEX|STATE`: '{line}'"),
        };
        let (id, state) = line.split_once('|').ok_or_else(unreadable)?;
        let Some((job, indexes)) = array_indexes(id) else {
            // Another job of the queue (not an array task).
            continue;
        };
        if !ours.contains(job) {
            continue;
        }
        let running = matches!(state, "RUNNING" | "COMPLETING" | "CONFIGURING");
        for index in indexes.into_iter().filter(|&i| i < sweep.len()) {
            out.insert(index, (format!("{job}_{index}"), running));
        }
    }
    Ok(out)
}

/// Each task's state: done (its shard), queued or running (Slurm's queue), failed (its error
/// file), or missing (cancelled, pre-empted, timed out or never submitted). The queue is read
/// first: a task that writes its shard and leaves the queue in between is then seen done, not
/// lost.
pub fn status(sweep: &Sweep) -> Result<Vec<TaskState>> {
    let queued = queue(sweep)?;
    let mut states = sweep.local_states();
    for (i, (id, running)) in queued {
        if states[i] != TaskState::Done {
            states[i] = if running {
                TaskState::Running(id)
            } else {
                TaskState::Queued(id)
            };
        }
    }
    Ok(states)
}

/// Submits every task that needs a run (failed or missing; never a done, queued or running
/// one) as one job array. `None` when there is nothing to run.
pub fn submit(sweep: &mut Sweep) -> Result<Option<Submission>> {
    const F: &str = "sweep.submit";
    sweep.file.slurm.check()?;
    let states = status(sweep)?;
    let indexes: Vec<usize> = (0..states.len())
        .filter(|&i| states[i].needs_run())
        .collect();
    if indexes.is_empty() {
        return Ok(None);
    }
    let script_path = sweep.dir.join("job.sh");
    std::fs::write(&script_path, script(sweep)).map_err(Error::io(F, &script_path))?;
    let o = &sweep.file.slurm;
    let mut args = vec![
        "--parsable".to_string(),
        format!("--array={}", array_spec(&indexes, o.array_parallelism)),
        format!(
            "--job-name=sandwich-{}",
            sweep.file.name.replace(char::is_whitespace, "_")
        ),
        format!(
            "--output={}",
            sweep.dir.join("logs/slurm-%A_%a.log").display()
        ),
        format!("--chdir={}", sweep.dir.display()),
    ];
    let flag = |name: &str, v: &Option<String>| v.as_ref().map(|v| format!("--{name}={v}"));
    args.extend(flag("partition", &o.partition));
    args.extend(flag("gres", &o.gres));
    args.extend(flag("time", &o.time));
    args.extend(flag("mem", &o.mem));
    args.extend(flag("account", &o.account));
    args.extend(flag("qos", &o.qos));
    args.extend(o.cpus_per_task.map(|n| format!("--cpus-per-task={n}")));
    args.extend(o.sbatch_args.iter().cloned());
    args.push(script_path.display().to_string());
    let out = output(F, "sbatch", &args)?;
    // --parsable prints `JOBID` or `JOBID;CLUSTER`.
    let job_id = out.trim().split(';').next().unwrap_or("").to_string();
    if job_id.is_empty() || !job_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Program {
            op: F,
            program: "sbatch".into(),
            message: format!("expected a job id, got '{}'", out.trim()),
        });
    }
    let sub = Submission {
        job_id,
        indexes,
        submitted: crate::utc_now_iso8601(false),
    };
    sweep.file.submissions.push(sub.clone());
    sweep.save()?;
    Ok(Some(sub))
}

/// Cancels the sweep's tasks still in the queue; returns their ids.
pub fn cancel(sweep: &Sweep) -> Result<Vec<String>> {
    let mut jobs: Vec<String> = queue(sweep)?
        .into_values()
        .map(|(id, _)| id.split('_').next().unwrap_or("").to_string())
        .collect();
    jobs.sort();
    jobs.dedup();
    if !jobs.is_empty() {
        output("sweep.cancel", "scancel", &jobs)?;
    }
    Ok(jobs)
}

/// Waits until none of the sweep's tasks is queued or running, polling every `poll`; returns
/// the final states. Interrupting stops the wait, not the jobs.
pub fn wait(
    sweep: &Sweep,
    poll: Duration,
    progress: &dyn Progress,
    interrupt: Option<&Interrupt>,
) -> Result<Vec<TaskState>> {
    progress.start(
        &format!("sweep '{}' on Slurm", sweep.file.name),
        sweep.len(),
    );
    let stopped = || interrupt.is_some_and(Interrupt::is_requested);
    let mut failures = 0;
    let mut settled = false;
    let result = loop {
        let states = match status(sweep) {
            Ok(s) => {
                failures = 0;
                s
            }
            // slurmctld can be briefly unreachable (a restart, a timeout): a few misses in a
            // row are waited out, not the end of an hours-long wait.
            Err(e) => {
                failures += 1;
                if failures >= 5 || stopped() {
                    break Err(e);
                }
                std::thread::sleep(poll);
                continue;
            }
        };
        let done = states.iter().filter(|s| **s == TaskState::Done).count();
        let active = states
            .iter()
            .filter(|s| matches!(s, TaskState::Queued(_) | TaskState::Running(_)))
            .count();
        progress.update(done, &format!("{active} queued or running"));
        if active == 0 {
            // On a network filesystem a shard written on a node can take a moment to appear
            // here: look once more before calling a task missing.
            if done == states.len() || settled {
                break Ok(states);
            }
            settled = true;
        } else {
            settled = false;
        }
        if stopped() {
            break Err(Error::Interrupted);
        }
        // Sleep in short steps so that an interrupt is seen at once.
        let until = std::time::Instant::now() + poll;
        while std::time::Instant::now() < until && !stopped() {
            std::thread::sleep(Duration::from_millis(100).min(poll));
        }
    };
    progress.finish();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_lists_are_ranges() {
        assert_eq!(array_spec(&[0, 1, 2, 3], None), "0-3");
        assert_eq!(array_spec(&[3], Some(2)), "3%2");
        assert_eq!(array_spec(&[0, 1, 3, 5, 6, 7], Some(4)), "0-1,3,5-7%4");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(array_indexes("12_3"), Some(("12", vec![3])));
        assert_eq!(
            array_indexes("12_[3-5,7%2]"),
            Some(("12", vec![3, 4, 5, 7]))
        );
        assert_eq!(array_indexes("12"), None);
    }
}
