//! Sweeps from Lua and from the command line: which program runs a task, custom arms from a
//! Lua file (`spec.arms_file`), and the `sweep` actions that both `sandwich sweep` and Python's
//! `python -m sandwich sweep` call (one implementation, one usage text).

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use mlua::{Lua, Value};
use sandwich_core::experiment::sweep::{self as core_sweep, slurm, Sweep, TaskOutcome};
use sandwich_core::experiment::{builtin_arm, Experiment, RunHooks, Spec, Supervisor};
use sandwich_core::{Interrupt, Progress};

use crate::args::type_name;
use crate::error::Error;

static WORKER: OnceLock<Vec<String>> = OnceLock::new();

/// This build (version and git revision, which `build.rs` records for this crate): what a
/// sweep's manifest says made it, and what its tasks must be. Python's wheel uses it too, so
/// both front ends write the same revision.
pub fn build() -> sandwich_core::experiment::Build {
    crate::experiment::build()
}

/// Names the command that runs one task (`COMMAND... DIR I`): the `sandwich` binary sets
/// `[itself, "sweep", "run-task"]`, the Python module `[python, "-m", "sandwich", "sweep",
/// "run-task"]`. The first call wins.
pub fn set_worker(command: Vec<String>) {
    let _ = WORKER.set(command);
}

/// The worker command: `$SANDWICH_WORKER` (words split on spaces) when set, else the one the
/// front end named, else a `sandwich` binary beside this program (or one directory up: cargo
/// puts test programs in `deps/` under the binary's directory), else `sandwich` from PATH.
pub fn worker() -> Vec<String> {
    if let Ok(w) = std::env::var("SANDWICH_WORKER") {
        let words: Vec<String> = w.split_whitespace().map(str::to_string).collect();
        if !words.is_empty() {
            return words;
        }
    }
    if let Some(w) = WORKER.get() {
        return w.clone();
    }
    let beside = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        [dir.join("sandwich"), dir.parent()?.join("sandwich")]
            .into_iter()
            .find(|p| p.is_file())
    });
    let program = beside.map_or_else(|| "sandwich".to_string(), |p| p.display().to_string());
    vec![program, "sweep".into(), "run-task".into()]
}

/// The custom arms `names` from the Lua file `path`, which returns `{name = function(ctx) ...
/// end, ...}`, as supervisors running in `lua`.
pub(crate) fn arms_from_file(
    lua: &Lua,
    function: &str,
    path: &Path,
    names: &[String],
    failed: &crate::experiment::Failed,
) -> mlua::Result<HashMap<String, Box<dyn Supervisor>>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::argument(
            function,
            "spec.arms_file",
            "a readable Lua file of custom arms",
            format!("'{}' ({e})", path.display()),
        )
    })?;
    let value: Value = lua
        .load(text)
        .set_name(format!("@{}", path.display()))
        .eval()?;
    let Value::Table(t) = value else {
        return Err(Error::argument(
            function,
            "spec.arms_file",
            "a file that returns a table {name = function(ctx) ... end}",
            format!("one that returns {}", type_name(&value)),
        )
        .into());
    };
    let mut out = Vec::new();
    for name in names {
        match t.get::<Value>(name.as_str())? {
            Value::Function(f) => out.push((name.clone(), f)),
            other => {
                return Err(Error::argument(
                    function,
                    "spec.arms_file",
                    &format!("a function for custom arm '{name}' in {}", path.display()),
                    type_name(&other),
                )
                .into())
            }
        }
    }
    Ok(crate::experiment::arms_of(lua, out, failed))
}

/// The arms `spec` lists that are neither built in nor in `given`: those its `arms_file`
/// supplies.
fn file_arm_names(spec: &Spec, given: &HashMap<String, Box<dyn Supervisor>>) -> Vec<String> {
    spec.arms
        .iter()
        .filter(|a| builtin_arm(a).is_none() && !given.contains_key(*a))
        .cloned()
        .collect()
}

/// Adds to `arms` those of `spec.arms_file` (when it names one), run in `lua`.
pub(crate) fn add_file_arms_in(
    lua: &Lua,
    function: &str,
    spec: &Spec,
    arms: &mut HashMap<String, Box<dyn Supervisor>>,
    failed: &crate::experiment::Failed,
) -> mlua::Result<()> {
    let Some(file) = &spec.arms_file else {
        return Ok(());
    };
    let names = file_arm_names(spec, arms);
    if !names.is_empty() {
        arms.extend(arms_from_file(
            lua,
            function,
            Path::new(file),
            &names,
            failed,
        )?);
    }
    Ok(())
}

/// Adds to `arms` those of `spec.arms_file` (when it names one), run in a fresh session: for
/// a front end without a Lua session of its own (Python).
pub fn add_file_arms(
    spec: &Spec,
    arms: &mut HashMap<String, Box<dyn Supervisor>>,
) -> sandwich_core::Result<()> {
    let Some(file) = &spec.arms_file else {
        return Ok(());
    };
    let names = file_arm_names(spec, arms);
    if !names.is_empty() {
        arms.extend(load_arms(Path::new(file), &names)?);
    }
    Ok(())
}

/// Custom arms from a Lua file for a front end without a Lua session of its own (a sweep's
/// task, Python): a fresh session (the arms' own, with `sw`) runs the file.
pub fn load_arms(
    path: &Path,
    names: &[String],
) -> sandwich_core::Result<HashMap<String, Box<dyn Supervisor>>> {
    let hook = |e: &dyn std::fmt::Display| sandwich_core::Error::Hook {
        op: "sweep",
        hook: "arms_file",
        message: e.to_string(),
    };
    let session = crate::Session::new().map_err(|e| hook(&e))?;
    let failed = crate::experiment::Failed::default();
    arms_from_file(session.lua(), "sweep", path, names, &failed).map_err(|e| hook(&e))
}

/// The experiment of the sweep in `dir`, its custom arms loaded from the sweep's arms file.
pub fn experiment(dir: &Path) -> sandwich_core::Result<Experiment> {
    Sweep::open(dir)?.experiment(&load_arms)
}

/// Collects the sweep in `dir`: the experiment with every shard's results.
pub fn collect(dir: &Path) -> sandwich_core::Result<Experiment> {
    Sweep::open(dir)?.collect(&load_arms)
}

/// The states of the sweep's tasks (asking Slurm's queue when the sweep was submitted).
pub fn status(dir: &Path) -> sandwich_core::Result<polars::prelude::DataFrame> {
    let sweep = Sweep::open(dir)?;
    let states = if sweep.file.submissions.is_empty() {
        sweep.local_states()
    } else {
        slurm::status(&sweep)?
    };
    sweep.status_frame(&states)
}

const USAGE: &str = "usage: sandwich sweep ACTION DIR
  run-task DIR I     run task I (what each array task or local worker runs)
  submit DIR         submit every task not done, queued or running as one Slurm job array
  local DIR [--workers N] [--threads T]
                     run every task not done on a local pool of processes
  status DIR         each task: done, queued, running, failed or missing
  collect DIR [--out OUT]
                     merge the shards: the results, PGR table and report of a local run,
                     saved in OUT (default DIR/collected)
  cancel DIR         scancel the sweep's queued and running tasks";

/// Parses a flag's value (`--workers 4`).
fn flag<T: std::str::FromStr>(
    rest: &[String],
    name: &str,
    what: &str,
) -> Result<Option<T>, Failure> {
    match rest.iter().position(|a| a == name) {
        None => Ok(None),
        Some(k) => rest
            .get(k + 1)
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                let got = rest
                    .get(k + 1)
                    .map_or("nothing".into(), |v| format!("'{v}'"));
                Failure::Usage(format!("{name} takes {what}, got {got}"))
            }),
    }
}

/// Why `sandwich sweep` stopped: a command line it cannot read (exit status 2, with the usage
/// text), or an action that failed (status 1).
enum Failure {
    Usage(String),
    Action(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Action(message)
    }
}

/// `sandwich sweep ACTION DIR ...`; returns the exit status. `progress` and `interrupt` are
/// the caller's (a bar on stderr, Ctrl-C).
pub fn main(args: &[String], progress: &dyn Progress, interrupt: Option<&Interrupt>) -> i32 {
    match run_main(args, progress, interrupt) {
        Ok(()) => 0,
        Err(Failure::Usage(message)) => {
            eprintln!("sandwich sweep: {message}\n{USAGE}");
            2
        }
        Err(Failure::Action(message)) => {
            eprintln!("sandwich sweep: {message}");
            1
        }
    }
}

fn run_main(
    args: &[String],
    progress: &dyn Progress,
    interrupt: Option<&Interrupt>,
) -> Result<(), Failure> {
    let bad = |m: &str| Failure::Usage(m.to_string());
    let (action, dir, rest) = match args {
        [a, ..] if a == "-h" || a == "--help" => {
            println!("{USAGE}");
            return Ok(());
        }
        [a, d, rest @ ..] => (a.as_str(), Path::new(d), rest),
        _ => return Err(bad("expected an action and a sweep directory")),
    };
    let allowed: &[&str] = match action {
        "local" => &["--workers", "--threads"],
        "collect" => &["--out"],
        _ => &[],
    };
    let mut k = 0;
    while k < rest.len() {
        if action == "run-task" && k == 0 {
            k += 1;
            continue;
        }
        if !allowed.contains(&rest[k].as_str()) {
            return Err(bad(&format!(
                "unexpected argument '{}' for {action}",
                rest[k]
            )));
        }
        k += 2;
    }
    let core = |e: sandwich_core::Error| e.with_causes();
    match action {
        "run-task" => {
            let i: usize = rest
                .first()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad("run-task takes DIR and a task index I"))?;
            let sweep = Sweep::open(dir).map_err(core)?;
            let hooks = RunHooks {
                progress,
                interrupt,
                on_step: None,
                on_arm_done: None,
            };
            match sweep
                .run_task(i, &load_arms, &build(), hooks)
                .map_err(core)?
            {
                TaskOutcome::Ran => eprintln!("task {i} ({}) done", describe(&sweep, i)),
                TaskOutcome::AlreadyDone => {
                    eprintln!(
                        "task {i} ({}) was already done: nothing ran",
                        describe(&sweep, i)
                    )
                }
            }
        }
        "submit" => {
            let mut sweep = Sweep::open(dir).map_err(core)?;
            match slurm::submit(&mut sweep).map_err(core)? {
                Some(s) => println!(
                    "submitted job {} with {} task(s): {}",
                    s.job_id,
                    s.indexes.len(),
                    slurm::array_spec(&s.indexes, None)
                ),
                None => println!("nothing to submit: every task is done, queued or running"),
            }
        }
        "local" => {
            let workers = flag(rest, "--workers", "a number of processes")?;
            let threads = flag(rest, "--threads", "a number of threads")?;
            let sweep = Sweep::open(dir).map_err(core)?;
            let o = core_sweep::LocalOptions::for_machine(sweep.len(), workers, threads)
                .map_err(core)?;
            core_sweep::run_local(&sweep, &o, progress, interrupt).map_err(core)?;
            println!("all {} tasks done", sweep.len());
        }
        "status" => {
            let table = status(dir).map_err(core)?;
            println!("{table}");
        }
        "collect" => {
            let out = flag::<String>(rest, "--out", "a directory")?
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| dir.join("collected"));
            let exp = collect(dir).map_err(core)?;
            exp.save(&out, &build()).map_err(core)?;
            println!("{}", exp.pgr(None).map_err(core)?);
            println!("saved in {}", out.display());
        }
        "cancel" => {
            let sweep = Sweep::open(dir).map_err(core)?;
            let jobs = slurm::cancel(&sweep).map_err(core)?;
            if jobs.is_empty() {
                println!("no task of this sweep is queued or running");
            } else {
                println!("cancelled job(s) {}", jobs.join(", "));
            }
        }
        other => return Err(bad(&format!("unknown action '{other}'"))),
    }
    Ok(())
}

fn describe(sweep: &Sweep, i: usize) -> String {
    let u = &sweep.file.units[i];
    format!("arm {}, seed {}", u.arm, u.seed)
}
