//! A sweep on one machine: a pool of worker processes, each running one task at a time with
//! its own compute threads, writing the same shards a Slurm array does. Processes rather than
//! threads: each task owns its allocator, its rayon pool and its Lua state, and a task that
//! crashes takes only itself down.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Sweep, TaskState};
use crate::{Error, Interrupt, Progress, Result};

/// How many tasks run at once and how many threads each computes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalOptions {
    pub workers: usize,
    pub threads: usize,
}

impl LocalOptions {
    /// The defaults for `tasks` tasks on this machine: as many workers as cores (at most one
    /// per task), the cores shared out among them. Either may be given.
    pub fn for_machine(
        tasks: usize,
        workers: Option<usize>,
        threads: Option<usize>,
    ) -> Result<Self> {
        const F: &str = "sweep.local";
        if workers == Some(0) {
            return Err(Error::invalid(F, "workers", "at least 1", 0));
        }
        if threads == Some(0) {
            return Err(Error::invalid(F, "threads", "at least 1", 0));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = workers.unwrap_or_else(|| match threads {
            Some(t) => (cores / t).max(1),
            None => cores,
        });
        let workers = workers.min(tasks.max(1));
        let threads = threads.unwrap_or((cores / workers).max(1));
        Ok(LocalOptions { workers, threads })
    }
}

fn spawn(sweep: &Sweep, i: usize, threads: usize) -> Result<Child> {
    let log_path = sweep.log_file(i);
    let log = std::fs::File::create(&log_path).map_err(Error::io("sweep.local", &log_path))?;
    let err = log
        .try_clone()
        .map_err(Error::io("sweep.local", &log_path))?;
    let Some((program, args)) = sweep.file.worker.split_first() else {
        return Err(Error::invalid(
            "sweep.local",
            "worker",
            "a command",
            "an empty list",
        ));
    };
    Command::new(program)
        .args(args)
        .arg(&sweep.dir)
        .arg(i.to_string())
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| Error::Program {
            op: "sweep.local",
            program: program.clone(),
            message: format!("cannot start a worker: {e}"),
        })
}

/// Kills the running workers and reaps them (no zombies left behind).
fn stop(running: &mut Vec<(usize, Child)>) {
    for (_, c) in running.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    running.clear();
}

/// The last lines of a task's log, for an error message.
fn tail(sweep: &Sweep, i: usize) -> String {
    let text = std::fs::read_to_string(sweep.log_file(i)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// Runs every task not done yet on `o.workers` processes; returns when all have ended. Tasks
/// that fail do not stop the others; the error lists them. Interrupting kills the workers.
pub fn run_local(
    sweep: &Sweep,
    o: &LocalOptions,
    progress: &dyn Progress,
    interrupt: Option<&Interrupt>,
) -> Result<()> {
    let states = sweep.local_states();
    let mut pending: std::collections::VecDeque<usize> = (0..sweep.len())
        .filter(|&i| states[i] != TaskState::Done)
        .collect();
    let total = sweep.len();
    let mut done = total - pending.len();
    let mut running: Vec<(usize, Child)> = Vec::new();
    let mut failed: Vec<usize> = Vec::new();
    progress.start(
        &format!("sweep '{}' on {} workers", sweep.file.name, o.workers),
        total,
    );
    progress.update(done, "");
    let result = loop {
        while running.len() < o.workers {
            let Some(i) = pending.pop_front() else { break };
            match spawn(sweep, i, o.threads) {
                Ok(c) => running.push((i, c)),
                Err(e) => {
                    stop(&mut running);
                    progress.finish();
                    return Err(e);
                }
            }
        }
        if running.is_empty() {
            break Ok(());
        }
        if interrupt.is_some_and(Interrupt::is_requested) {
            stop(&mut running);
            break Err(Error::Interrupted);
        }
        let mut k = 0;
        while k < running.len() {
            match running[k].1.try_wait() {
                Ok(Some(status)) => {
                    let (i, _) = running.swap_remove(k);
                    if status.success() && sweep.is_done(i) {
                        done += 1;
                        progress.update(done, &format!("task {i} done"));
                    } else {
                        failed.push(i);
                    }
                }
                Ok(None) => k += 1,
                Err(_) => {
                    let (i, mut c) = running.swap_remove(k);
                    let _ = c.kill();
                    let _ = c.wait();
                    failed.push(i);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    progress.finish();
    result?;
    if failed.is_empty() {
        return Ok(());
    }
    failed.sort_unstable();
    let first = failed[0];
    let why = match &sweep.local_states()[first] {
        TaskState::Failed(m) => m.clone(),
        _ => tail(sweep, first),
    };
    Err(Error::Program {
        op: "sweep.local",
        program: sweep.file.worker.join(" "),
        message: format!(
            "{} of {total} tasks failed ({}); task {first}: {why} (logs in {}; running the sweep again runs only these)",
            failed.len(),
            failed.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
            sweep.dir.join("logs").display()
        ),
    })
}
