//! Sweeps as a user runs them: `exp:run{backend = "local"}` and a Slurm job array on a real
//! one-node cluster (`tests/slurm/start.sh`, started by tests/run.sh), each collected into the
//! same results, items and curves as the experiment run in one process — to the last digit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn sandwich() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sandwich"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A fresh directory under the system's temporary one (kept on failure, for its logs).
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sandwich-sweep-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A custom arm from a file: the weak model's hard predictions, after `delay` seconds of busy
/// waiting (a task long enough to be caught running).
fn write_arms(dir: &Path, delay: f64) {
    std::fs::write(
        dir.join("arms.lua"),
        format!(
            r#"return {{
  weak_hard = function(ctx)
    local t = os.clock()
    while os.clock() - t < {delay} do end
    return ctx.weak_predictions:select{{"id", sw.col("pred"):alias("label")}}
  end,
}}
"#
        ),
    )
    .unwrap();
}

/// The experiment: 2 seeds × (weak, ceiling, naive_w2s, weak_hard) = 8 units. `run` is the Lua
/// call that runs it.
fn script(dir: &Path, run: &str) -> PathBuf {
    let path = dir.join("exp.lua");
    std::fs::write(
        &path,
        format!(
            r#"
local exp = sw.experiment "sweep" {{
  task = {{builtin = "sentiment", n = 240, seed = 3}},
  strong = {{model = {{hidden_size = 16, layers = 1, heads = 2}}, train = {{epochs = 2, batch_size = 16, lr = 3e-3}}}},
  weak = {{model = {{hidden_size = 8, layers = 1, heads = 2}}, train = {{epochs = 1, batch_size = 16, lr = 3e-3}}}},
  arms = {{"weak", "ceiling", "naive_w2s", "weak_hard"}},
  arms_file = "arms.lua",
  seeds = {{1, 2}},
}}
{run}
"#
        ),
    )
    .unwrap();
    path
}

fn run_script(dir: &Path, path: &Path) -> String {
    ok(
        sandwich()
            .current_dir(dir)
            .arg("run")
            .arg(path)
            .output()
            .unwrap(),
        "sandwich run",
    )
}

/// The inline run, saved in `dir/inline`.
fn inline(dir: &Path) -> PathBuf {
    let s = script(dir, r#"exp:run{backend = "inline"}; exp:save("inline")"#);
    run_script(dir, &s);
    dir.join("inline")
}

fn assert_same_tables(a: &Path, b: &Path) {
    for table in ["results.csv", "items.csv", "curves.csv"] {
        let (x, y) = (
            std::fs::read_to_string(a.join(table)).unwrap(),
            std::fs::read_to_string(b.join(table)).unwrap(),
        );
        assert!(x.lines().count() > 8, "{table} has rows");
        assert_eq!(x, y, "{table} of {} and {}", a.display(), b.display());
    }
}

/// `sandwich sweep ACTION DIR`.
fn sweep(action: &str, dir: &Path) -> Command {
    let mut c = sandwich();
    c.args(["sweep", action]).arg(dir);
    c
}

/// `sandwich sweep collect SWEEP --out OUT`, which must succeed; its output.
fn collect(sweep_dir: &Path, out: &Path) -> String {
    ok(
        sweep("collect", sweep_dir)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap(),
        "sweep collect",
    )
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// The submissions `sweep.json` records.
fn submissions(sweep_dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(sweep_dir.join("sweep.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["submissions"].as_array().unwrap().clone()
}

#[test]
fn a_local_pool_gives_the_numbers_of_one_process_and_resumes() {
    let dir = scratch("local");
    write_arms(&dir, 0.0);
    let reference = inline(&dir);
    let s = script(
        &dir,
        r#"exp:run{backend = "local", dir = "pool", workers = 2}; exp:save("local")"#,
    );
    run_script(&dir, &s);
    assert_same_tables(&reference, &dir.join("local"));
    // collect from the command line: the same tables, and the PGR table printed.
    let out = collect(&dir.join("pool"), &dir.join("collected"));
    assert!(
        out.contains("naive_w2s") && out.contains("weak_hard"),
        "{out}"
    );
    assert_same_tables(&reference, &dir.join("collected"));
    // What collect saved reruns to the same numbers, its custom arm from the sweep's copy of
    // the arms file (from another working directory).
    let rerun = ok(
        sandwich()
            .current_dir(std::env::temp_dir())
            .args(["run", "-e"])
            .arg(format!(
                "local _, same = sw.experiment.rerun('{}'); return same",
                dir.join("collected").display()
            ))
            .output()
            .unwrap(),
        "rerun of the collected sweep",
    );
    assert_eq!(rerun.trim(), "true");
    // A finished task is not run again; a lost shard is, and only it.
    let again = sweep("run-task", &dir.join("pool"))
        .arg("0")
        .output()
        .unwrap();
    assert!(
        text(&again.stderr).contains("already done"),
        "{}",
        text(&again.stderr)
    );
    std::fs::remove_dir_all(dir.join("pool/shards/5")).unwrap();
    let status = ok(
        sweep("status", &dir.join("pool")).output().unwrap(),
        "sweep status",
    );
    assert_eq!(status.matches("missing").count(), 1, "{status}");
    let log0 = modified(&dir.join("pool/logs/task-0.log"));
    ok(
        sweep("local", &dir.join("pool")).output().unwrap(),
        "sweep local",
    );
    assert!(dir.join("pool/shards/5").is_dir());
    assert_eq!(
        log0,
        modified(&dir.join("pool/logs/task-0.log")),
        "task 0 ran again"
    );
    collect(&dir.join("pool"), &dir.join("collected2"));
    assert_same_tables(&reference, &dir.join("collected2"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dataframe_task_and_the_assistant_travel_through_a_local_sweep() {
    // The task as a DataFrame (task.parquet, checked by its hash) and an arm whose seed
    // service (the assistant's two cross-fitted models) adds curves: one copy per seed.
    let dir = scratch("frame");
    std::fs::write(
        dir.join("exp.lua"),
        r#"
local function spec()
  return {
    task = sw.tasks.builtin("sentiment", {n = 160, seed = 5}),
    strong = {model = {hidden_size = 16, layers = 1, heads = 2}, train = {epochs = 1, batch_size = 16, lr = 3e-3}},
    weak = {model = {hidden_size = 8, layers = 1, heads = 2}, train = {epochs = 1, batch_size = 16, lr = 3e-3}},
    overseers = {novices = {overseers = {{id = "a", accuracy = 0.9}, {id = "b", accuracy = 0.6}, {id = "c", accuracy = 0.55}}, k = 3}},
    arms = {"weak", "ceiling", "unassisted_novices", "assisted_novices"},
    seeds = {1, 2},
  }
end
local a = sw.experiment "frame" (spec())
a:run{backend = "inline"}
a:save("inline")
local b = sw.experiment "frame" (spec())
b:run{backend = "local", dir = "pool", workers = 2}
b:save("local")
"#,
    )
    .unwrap();
    run_script(&dir, &dir.join("exp.lua"));
    assert_same_tables(&dir.join("inline"), &dir.join("local"));
    assert!(dir.join("pool/task.parquet").is_file());
    let curves = std::fs::read_to_string(dir.join("local/curves.csv")).unwrap();
    assert!(curves.contains("assistant_fold0") && curves.contains("assistant_fold1"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_sweep_options_are_errors_naming_them() {
    let dir = scratch("bad");
    write_arms(&dir, 0.0);
    for (run, expect) in [
        (
            r#"exp:run{backend = "slurm", workers = 2, dir = "x"}"#,
            "'workers'",
        ),
        (r#"exp:run{backend = "cloud"}"#, "inline, local or slurm"),
        (r#"exp:run{backend = "slurm"}"#, "invalid argument 'dir'"),
        (r#"exp:run{backend = "local", nodes = 3}"#, "nodes"),
        (r#"exp:run{backend = "local", workers = 0}"#, "workers"),
        // Checked before anything is submitted (or the sweep written).
        (
            r#"exp:run{backend = "slurm", dir = "polled", poll = 0}"#,
            "invalid argument 'poll'",
        ),
    ] {
        let s = script(&dir, run);
        let out = sandwich()
            .current_dir(&dir)
            .arg("run")
            .arg(&s)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{run} succeeded");
        let err = text(&out.stderr);
        assert!(
            err.contains("experiment.run")
                || err.contains("Experiment.run")
                || err.contains("sweep.local"),
            "{run}: {err}"
        );
        assert!(err.contains(expect), "{run}: {err}");
    }
    // Inline custom arms cannot travel to other processes.
    std::fs::write(
        dir.join("inline_arm.lua"),
        r#"
local exp = sw.experiment "x" {
  task = {builtin = "sentiment", n = 100, seed = 1},
  strong = {model = {hidden_size = 8, layers = 1, heads = 2}},
  weak = {model = {hidden_size = 8, layers = 1, heads = 2}},
  arms = {"weak", {name = "mine", supervise = function(ctx) return ctx.weak_predictions end}},
}
exp:run{backend = "local", dir = "p"}
"#,
    )
    .unwrap();
    let out = sandwich()
        .current_dir(&dir)
        .arg("run")
        .arg("inline_arm.lua")
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("spec.arms_file"),
        "{}",
        text(&out.stderr)
    );
    let out = sandwich()
        .args(["sweep", "frobnicate", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown action 'frobnicate'"));
    assert!(
        !dir.join("polled").exists(),
        "a sweep written despite a bad poll"
    );
    let out = sweep("local", &dir.join("x"))
        .args(["--workers", "many"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--workers takes a number of processes, got 'many'"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether the one-node cluster answers (`sinfo` sees an idle or mixed node).
fn slurm_up() -> bool {
    Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map(|o| {
            let s = text(&o.stdout);
            o.status.success()
                && (s.contains("idle") || s.contains("mixed") || s.contains("allocated"))
        })
        .unwrap_or(false)
}

fn squeue() -> String {
    text(
        &Command::new("squeue")
            .args(["-h", "-r", "-o", "%i|%T"])
            .output()
            .unwrap()
            .stdout,
    )
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_slurm_array_with_a_cancelled_task_resubmits_it_and_collects_the_same_numbers() {
    if !slurm_up() {
        let message = "SKIPPED: no Slurm cluster answers (`sinfo`): tests/slurm/start.sh starts a one-node one as root (tests/run.sh runs it)";
        // Where the cluster can be started (CI runs as root), not running it is a failure.
        if std::env::var_os("CI").is_some()
            && Command::new("id")
                .arg("-u")
                .output()
                .map(|o| text(&o.stdout).trim() == "0")
                .unwrap_or(false)
        {
            panic!("{message}");
        }
        eprintln!("\n{}\n{message}\n{}\n", "!".repeat(78), "!".repeat(78));
        return;
    }
    let dir = scratch("slurm");
    write_arms(&dir, 3.0);
    let reference = inline(&dir);
    let s = script(
        &dir,
        r#"local r = exp:run{backend = "slurm", dir = "array", wait = false, array_parallelism = 2}
local jobs = r:column("job")
for i = 1, r:height() do
  if type(jobs[i]) == "string" then print("job " .. jobs[i]:match("^(%d+)_")); break end
end"#,
    );
    let out = run_script(&dir, &s);
    let job = out
        .trim()
        .strip_prefix("job ")
        .expect("a job id")
        .to_string();
    // Task 3 (seed 1's custom arm) waits three seconds: cancel it while it runs.
    let victim = format!("{job}_3");
    wait_for("task 3 to run", Duration::from_secs(120), || {
        squeue().lines().any(|l| l == format!("{victim}|RUNNING"))
    });
    ok(
        Command::new("scancel").arg(&victim).output().unwrap(),
        "scancel",
    );
    wait_for("the array to drain", Duration::from_secs(300), || {
        !squeue().lines().any(|l| l.starts_with(&format!("{job}_")))
    });
    let status = ok(
        sweep("status", &dir.join("array")).output().unwrap(),
        "sweep status",
    );
    assert_eq!(status.matches("done").count(), 7, "{status}");
    assert_eq!(status.matches("missing").count(), 1, "{status}");
    assert!(!dir.join("array/shards/3").exists());
    // collect refuses an incomplete sweep, naming the task.
    let early = sweep("collect", &dir.join("array")).output().unwrap();
    assert!(!early.status.success());
    assert!(
        text(&early.stderr).contains("3 (missing)"),
        "{}",
        text(&early.stderr)
    );
    // Resubmitting runs only the cancelled task.
    let sub = ok(
        sweep("submit", &dir.join("array")).output().unwrap(),
        "sweep submit",
    );
    assert!(sub.contains("with 1 task(s): 3"), "{sub}");
    wait_for("the resubmitted task", Duration::from_secs(300), || {
        dir.join("array/shards/3").is_dir()
    });
    let again = ok(
        sweep("submit", &dir.join("array")).output().unwrap(),
        "sweep submit",
    );
    assert!(again.contains("nothing to submit"), "{again}");
    collect(&dir.join("array"), &dir.join("collected"));
    assert_same_tables(&reference, &dir.join("collected"));
    let subs = submissions(&dir.join("array"));
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[1]["indexes"], serde_json::json!([3]));
    // The same experiment run into the same directory again, waiting (the default): nothing
    // left to submit, so it collects at once.
    let s = script(
        &dir,
        r#"exp:run{backend = "slurm", dir = "array", poll = 0.2}; exp:save("resumed")"#,
    );
    run_script(&dir, &s);
    assert_same_tables(&reference, &dir.join("resumed"));
    assert_eq!(
        submissions(&dir.join("array")).len(),
        2,
        "nothing resubmitted"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
